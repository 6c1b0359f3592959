package app

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/varta-go/varta/pkg/exitcode"
)

var update = flag.Bool("update", false, "rewrite golden files")

// testNow is "now" for --since/--until durations in tests.
var testNow = time.Date(2024, 5, 1, 12, 30, 0, 0, time.UTC)

// runApp runs varta-audit in-process and returns stdout, stderr and the
// exit code.
func runApp(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	a := newApp(env{now: func() time.Time { return testNow }, isTerminal: func(io.Writer) bool { return false }, progressMin: 1})
	var out, errOut bytes.Buffer
	a.Writer, a.ErrWriter = &out, &errOut
	code := RunWith(a, append([]string{Name}, args...), &errOut)
	return out.String(), errOut.String(), code
}

// TestGolden compares text (and some JSON) output with testdata/golden;
// run with -update to rewrite the golden files.
func TestGolden(t *testing.T) {
	tests := []struct {
		golden string
		args   []string
		code   int
	}{
		{"verify-rotated.txt", []string{"verify", "testdata/rotated/audit.log"}, exitcode.OK},
		{"verify-rotated.json", []string{"verify", "--format", "json", "testdata/rotated/audit.log"}, exitcode.OK},
		{"verify-anchor.txt", []string{"verify", "--anchor", "4b380109a51ffe3f188a9ea20bf5809f62f8fd12bcd7aec7e4ae7dd687b43af9", "testdata/rotated/audit.log"}, exitcode.OK},
		{"verify-tampered.txt", []string{"verify", "testdata/tampered/audit.log"}, exitcode.Failure},
		{"verify-warnings.txt", []string{"verify", "testdata/warnings/audit.log"}, exitcode.OK},
		{"verify-warnings-strict.txt", []string{"verify", "--strict", "testdata/warnings/audit.log"}, exitcode.Failure},
		{"verify-unchained.txt", []string{"verify", "testdata/unchained/audit.log"}, exitcode.Failure},
		{"verify-unchained-allowed.txt", []string{"verify", "--allow-unchained", "testdata/unchained/audit.log"}, exitcode.OK},
		{"head-rotated.txt", []string{"head", "testdata/rotated/audit.log"}, exitcode.OK},
		{"head-rotated.json", []string{"head", "--format", "json", "testdata/rotated/audit.log"}, exitcode.OK},
		{"summarize-rotated.txt", []string{"summarize", "--utc", "testdata/rotated/audit.log"}, exitcode.OK},
		{"summarize-rotated.json", []string{"summarize", "--format", "json", "testdata/rotated/audit.log"}, exitcode.OK},
		{"summarize-tampered.txt", []string{"summarize", "--utc", "testdata/tampered/audit.log"}, exitcode.OK},
		{"show-rotated.txt", []string{"show", "--utc", "testdata/rotated/audit.log"}, exitcode.OK},
		{"show-filtered.txt", []string{"show", "--utc", "--pid", "31", "--kind", "spawn,complete", "--since", "2024-05-01T12:00:20Z", "--until", "2024-05-01T12:11:10Z", "testdata/rotated/audit.log"}, exitcode.OK},
		{"show-since-duration.txt", []string{"show", "--utc", "--kind", "boot", "--since", "20m", "testdata/rotated/audit.log"}, exitcode.OK},
		{"show-boots.json", []string{"show", "--utc", "--format", "json", "--kind", "boot", "testdata/rotated/audit.log"}, exitcode.OK},
		{"verify-control.txt", []string{"verify", "testdata/control/audit.log"}, exitcode.OK},
		{"summarize-control.txt", []string{"summarize", "--utc", "testdata/control/audit.log"}, exitcode.OK},
		{"summarize-control.json", []string{"summarize", "--format", "json", "testdata/control/audit.log"}, exitcode.OK},
		{"show-control.txt", []string{"show", "--utc", "testdata/control/audit.log"}, exitcode.OK},
		{"show-control-kind.json", []string{"show", "--utc", "--format", "json", "--kind", "control", "testdata/control/audit.log"}, exitcode.OK},
		{"show-none.txt", []string{"show", "--utc", "--pid", "999", "testdata/rotated/audit.log"}, exitcode.OK},
	}
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) {
			out, errOut, code := runApp(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit code %d, want %d; stderr: %s", code, tc.code, errOut)
			}
			path := filepath.Join("testdata", "golden", tc.golden)
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if out != string(want) {
				t.Fatalf("output differs from %s (run go test -update to accept):\n%s", path, out)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{"no PATH", []string{"verify"}, "missing PATH"},
		{"flag after PATH", []string{"verify", "testdata/rotated/audit.log", "--strict"}, "options go before PATH"},
		{"two PATHs", []string{"head", "a", "b"}, "want one PATH"},
		{"bad format", []string{"verify", "--format", "xml", "testdata/rotated/audit.log"}, "unknown format"},
		{"head bad format", []string{"head", "--format", "xml", "testdata/rotated/audit.log"}, "head: --format: unknown format"},
		{"summarize bad format", []string{"summarize", "--format", "xml", "testdata/rotated/audit.log"}, "summarize: --format: unknown format"},
		{"show bad format", []string{"show", "--format", "xml", "testdata/rotated/audit.log"}, "show: --format: unknown format"},
		{"rotate bad format", []string{"rotate", "--format", "xml", "testdata/none/audit.log"}, "rotate: --format: unknown format"},
		{"rotate no PATH", []string{"rotate"}, "rotate: missing PATH"},
		{"bad anchor", []string{"verify", "--anchor", "xyz", "testdata/rotated/audit.log"}, "--anchor"},
		{"anchor and anchor-file", []string{"verify", "--anchor", strings.Repeat("a", 64), "--anchor-file", "x", "testdata/rotated/audit.log"}, "mutually exclusive"},
		{"bad kind", []string{"show", "--kind", "reboot", "testdata/rotated/audit.log"}, "--kind"},
		{"bad pid", []string{"show", "--pid", "-3", "testdata/rotated/audit.log"}, "--pid"},
		{"bad since", []string{"show", "--since", "yesterday", "testdata/rotated/audit.log"}, "RFC 3339"},
		{"unknown flag", []string{"verify", "--frobnicate", "testdata/rotated/audit.log"}, "frobnicate"},
		{"missing log", []string{"verify", "testdata/none/audit.log"}, "does not exist"},
		{"missing anchor file", []string{"verify", "--anchor-file", "testdata/none", "testdata/rotated/audit.log"}, "verify: --anchor-file: open testdata/none: no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := runApp(t, tc.args...)
			if code != exitcode.Usage || !strings.Contains(errOut, tc.msg) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut, exitcode.Usage, tc.msg)
			}
		})
	}
}

func TestAnchorFile(t *testing.T) {
	head, _, code := runApp(t, "head", "testdata/rotated/audit.log")
	if code != 0 {
		t.Fatal(head)
	}
	headJSON, _, _ := runApp(t, "head", "--format", "json", "testdata/rotated/audit.log")
	mid := "4b380109a51ffe3f188a9ea20bf5809f62f8fd12bcd7aec7e4ae7dd687b43af9\n"
	wrong := strings.Repeat("ab", 32) + "\n"
	tests := []struct {
		name, content string
		code          int
	}{
		{"head text output", head, exitcode.OK},
		{"head json output", headJSON, exitcode.OK},
		{"bare hash of an older record", mid, exitcode.OK},
		{"a value not in the chain", wrong, exitcode.Failure},
		{"two values", mid + wrong, exitcode.Usage},
		{"no value", "nothing here\n", exitcode.Usage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "anchor")
			os.WriteFile(f, []byte(tc.content), 0o600)
			out, errOut, code := runApp(t, "verify", "--anchor-file", f, "testdata/rotated/audit.log")
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, out, errOut)
			}
			if tc.code == exitcode.Failure && !strings.Contains(out, "NOT FOUND") {
				t.Fatalf("output does not report the missing anchor:\n%s", out)
			}
		})
	}
}

func TestShowWarnsWhenTampered(t *testing.T) {
	out, errOut, code := runApp(t, "show", "--utc", "--kind", "boot", "testdata/tampered/audit.log")
	if code != exitcode.OK || !strings.Contains(errOut, "does not verify") || !strings.Contains(out, "rotation") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
}

// TestProgressOnlyOnTerminal: the bar goes to stderr, only when stderr is a
// terminal and the input is large enough; stdout is the same either way.
func TestProgressOnlyOnTerminal(t *testing.T) {
	tests := []struct {
		name     string
		terminal bool
		min      int64
		args     []string
		bar      bool
	}{
		{"terminal, large input", true, 1, nil, true},
		{"terminal, small input", true, 1 << 40, nil, false},
		{"not a terminal", false, 1, nil, false},
		{"--no-progress", true, 1, []string{"--no-progress"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newApp(env{now: func() time.Time { return testNow }, isTerminal: func(io.Writer) bool { return tc.terminal }, progressMin: tc.min})
			var out, errOut bytes.Buffer
			a.Writer, a.ErrWriter = &out, &errOut
			args := append(append([]string{Name, "verify"}, tc.args...), "testdata/rotated/audit.log")
			if code := RunWith(a, args, &errOut); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			if got := strings.Contains(errOut.String(), "verify"); got != tc.bar {
				t.Fatalf("progress on stderr = %v, want %v: %q", got, tc.bar, errOut.String())
			}
			want, _ := os.ReadFile("testdata/golden/verify-rotated.txt")
			if out.String() != string(want) {
				t.Fatalf("stdout changed:\n%s", out.String())
			}
		})
	}
}
