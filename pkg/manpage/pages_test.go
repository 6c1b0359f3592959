package manpage_test

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the committed man pages")

// pages are the committed man pages and the generator of each, relative
// to the repository root.
var pages = []struct {
	page, genman string
}{
	{"man/varta-watch.8", "./cmd/varta-watch/internal/genman"},
	{"man/varta-beat.1", "./cmd/varta-beat/internal/genman"},
	{"man/varta-audit.1", "./cmd/varta-audit/internal/genman"},
}

// repoRoot is the repository holding this module, or "" when the package
// is tested outside it (as a dependency).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.work")); err != nil || os.Getenv("GOWORK") == "off" {
		return "" // outside the workspace (GOWORK=off: the module tested on its own)
	}
	return root
}

// TestCommittedPagesCurrent fails when a page in man/ differs from what its
// program's CLI definitions generate. Run "make man" (or this test with
// -update) to refresh them.
func TestCommittedPagesCurrent(t *testing.T) {
	root := repoRoot(t)
	if root == "" {
		t.Skip("not inside the varta repository")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not found")
	}
	for _, tc := range pages {
		t.Run(filepath.Base(tc.page), func(t *testing.T) {
			cmd := exec.Command("go", "run", tc.genman)
			cmd.Dir = root
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			got, err := cmd.Output()
			if err != nil {
				t.Fatalf("go run %s: %v\n%s", tc.genman, err, stderr.String())
			}
			path := filepath.Join(root, tc.page)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read committed page: %v (run make man)", err)
			}
			if !bytes.Equal(want, got) {
				t.Fatalf("%s is stale: run make man", tc.page)
			}
		})
	}
}

// TestCommittedPagesRender renders every committed page with man(1) at 80
// columns and fails on any warning (a line that cannot be broken, an
// unknown request, a bad escape).
func TestCommittedPagesRender(t *testing.T) {
	root := repoRoot(t)
	if root == "" {
		t.Skip("not inside the varta repository")
	}
	if _, err := exec.LookPath("man"); err != nil {
		t.Skip("man not installed (apt-get install man-db)")
	}
	for _, tc := range pages {
		t.Run(filepath.Base(tc.page), func(t *testing.T) {
			cmd := exec.Command("man", "--warnings", "-l", filepath.Join(root, tc.page))
			cmd.Env = append(os.Environ(), "MANWIDTH=80", "MANPAGER=cat", "PAGER=cat", "LANG=C.UTF-8")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("man -l %s: %v\n%s", tc.page, err, stderr.String())
			}
			if stderr.Len() > 0 {
				t.Errorf("man -l %s warns:\n%s", tc.page, stderr.String())
			}
			text := string(out)
			for _, want := range []string{"NAME", "SYNOPSIS", "EXIT STATUS", "SIGNALS", "FILES", "EXAMPLES"} {
				if !strings.Contains(text, "\n"+want+"\n") {
					t.Errorf("%s has no %s section", tc.page, want)
				}
			}
			for _, bad := range []string{`\"`, `=""`, "VARTAWATCH", `\-`, `\fB`} {
				if strings.Contains(text, bad) {
					t.Errorf("%s renders %q", tc.page, bad)
				}
			}
		})
	}
}
