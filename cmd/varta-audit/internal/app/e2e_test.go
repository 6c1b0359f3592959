package app

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/varta-go/varta/pkg/audit"
	"github.com/varta-go/varta/pkg/exitcode"
)

// helperEnv switches the test binary into a helper process that holds an
// audit file open (and locked) as varta-watch does, until stdin closes.
const helperEnv = "VARTA_AUDIT_APP_HELPER"

// binary is the varta-audit binary built by TestMain.
var binary string

func TestMain(m *testing.M) {
	if path := os.Getenv(helperEnv); path != "" {
		os.Exit(holdLock(path))
	}
	dir, err := os.MkdirTemp("", "varta-audit-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		binary = filepath.Join(dir, Name)
		// timetzdata: local-time output can be tested with any TZ.
		build := exec.Command("go", "build", "-tags", "timetzdata", "-o", binary, "github.com/varta-go/varta/cmd/varta-audit")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build varta-audit: %v\n%s", err, out)
			return 2
		}
		return m.Run()
	}()
	os.Exit(code)
}

func holdLock(path string) int {
	w, err := audit.Open(audit.Options{Path: path})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("locked")
	io.Copy(io.Discard, os.Stdin)
	if err := w.Close(); err != nil {
		fmt.Println("error", err)
		return 1
	}
	return 0
}

// run executes the built binary.
func run(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

// examplePath is the repository's copy of the reference example audit log.
const examplePath = "../../../../pkg/audit/testdata/audit-example.log"

func TestE2EExitCodes(t *testing.T) {
	if _, err := os.Stat(examplePath); err != nil {
		t.Fatalf("the example audit log: %v", err)
	}
	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"example verifies", []string{"verify", examplePath}, exitcode.OK, "verdict:  INTACT\n"},
		{"example head", []string{"head", examplePath}, exitcode.OK, "5 edd77880b7dffa2f8397fda2137cfd7b3e7af91baf0d665b890b3865ea1f6dad\n"},
		{"rotated verifies", []string{"verify", "testdata/rotated/audit.log"}, exitcode.OK, "verdict:  INTACT"},
		{"tampered fails", []string{"verify", "testdata/tampered/audit.log"}, exitcode.Failure, "audit.log.1:11 seq 39 TAMPER"},
		{"warnings pass", []string{"verify", "testdata/warnings/audit.log"}, exitcode.OK, "INTACT, with warnings"},
		{"warnings fail strictly", []string{"verify", "--strict", "testdata/warnings/audit.log"}, exitcode.Failure, "FAILED"},
		{"unchained fails", []string{"verify", "testdata/unchained/audit.log"}, exitcode.Failure, "carry no chain"},
		{"unchained allowed", []string{"verify", "--allow-unchained", "testdata/unchained/audit.log"}, exitcode.OK, "integrity NOT verified"},
		{"unchained head", []string{"head", "testdata/unchained/audit.log"}, exitcode.Failure, "3 -\n"},
		{"missing log", []string{"verify", "testdata/none.log"}, exitcode.Usage, ""},
		{"usage", []string{"verify"}, exitcode.Usage, ""},
		{"version", []string{"--version"}, exitcode.OK, "varta-audit version"},
		{"summarize json", []string{"summarize", "--format", "json", "testdata/rotated/audit.log"}, exitcode.OK, `"integrity": "intact"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := run(t, nil, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.out) {
				t.Fatalf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s\nwant stdout containing %q", code, tc.code, out, errOut, tc.out)
			}
		})
	}
}

func TestE2ELocalTime(t *testing.T) {
	out, _, code := run(t, []string{"TZ=Asia/Kolkata"}, "show", "--kind", "boot", "testdata/rotated/audit.log")
	if code != 0 || !strings.Contains(out, "2024-05-01 17:30:00.000 +05:30") {
		t.Fatalf("exit %d, show does not print local (TZ) times:\n%s", code, out)
	}
	out, _, _ = run(t, []string{"TZ=Asia/Kolkata"}, "show", "--utc", "--kind", "boot", "testdata/rotated/audit.log")
	if !strings.Contains(out, "2024-05-01 12:00:00.000 +00:00") {
		t.Fatalf("--utc ignored:\n%s", out)
	}
}

// copyLog copies a fixture's files into a new directory (owned by us, as
// varta-watch's own files are) and returns the new PATH.
func copyLog(t *testing.T, fixture string) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(filepath.Join("testdata", fixture))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("testdata", fixture, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "audit.log")
}

func TestE2ERotate(t *testing.T) {
	path := copyLog(t, "rotated")
	headBefore, _, _ := run(t, nil, "head", path)
	anchor := filepath.Join(t.TempDir(), "sealed-head")
	os.WriteFile(anchor, []byte(headBefore), 0o600)

	out, errOut, code := run(t, nil, "rotate", path)
	if code != 0 || !strings.Contains(out, "rotated "+path+" to "+path+".1") {
		t.Fatalf("rotate: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = run(t, nil, "verify", "--anchor-file", anchor, path)
	if code != 0 || !strings.Contains(out, "4 files") || !strings.Contains(out, "anchor:   ") {
		t.Fatalf("verify after rotate: exit %d\n%s%s", code, out, errOut)
	}
	headAfter, _, _ := run(t, nil, "head", path)
	if !strings.HasPrefix(headAfter, "80 ") {
		t.Fatalf("head after rotate: %q, want seq 80 (the rotation boot)", headAfter)
	}

	// A process holding the file as varta-watch does makes rotate refuse.
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), helperEnv+"="+path)
	stdin, err := helper.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	helper.Stderr = os.Stderr
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer helper.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("helper said %q (%v)", line, err)
	}
	before, _ := os.ReadFile(path)
	out, errOut, code = run(t, nil, "rotate", path)
	if code != exitcode.Failure || !strings.Contains(errOut, "locked by another process") {
		t.Fatalf("rotate of a live file: exit %d\n%s%s", code, out, errOut)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("a refused rotation changed the file")
	}
	stdin.Close()
	if err := helper.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	// The helper wrote a resume boot; once it is gone rotate works again.
	if out, errOut, code = run(t, nil, "rotate", "--format", "json", path); code != 0 || !strings.Contains(out, `"rotated"`) {
		t.Fatalf("rotate after the daemon stopped: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code = run(t, nil, "verify", "--strict", path); code != 0 {
		t.Fatalf("final verify: exit %d\n%s%s", code, out, errOut)
	}
}
