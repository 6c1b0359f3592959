package events

import (
	"os"
	"os/exec"
	"testing"
)

// childEnv names the mode a re-executed test binary runs in. Tests that must
// change process-wide state (resource limits, standard output) run their
// body in a child process.
const childEnv = "VARTA_EXPORT_TEST_CHILD"

// inChild reports whether this process is the child for mode.
func inChild(mode string) bool { return os.Getenv(childEnv) == mode }

// runChild re-executes the test binary running only test in mode and
// returns its standard output; it fails the test if the child fails.
func runChild(t *testing.T, test, mode string, env ...string) []byte {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), childEnv+"="+mode), env...)
	var stderr []byte
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = ee.Stderr
	}
	if err != nil {
		t.Fatalf("child %s: %v\nstdout:\n%s\nstderr:\n%s", mode, err, out, stderr)
	}
	return out
}
