package e2e

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// run runs a binary to completion and returns stdout, stderr and the exit
// code.
func run(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return o.String(), e.String(), ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return o.String(), e.String(), 0
}

// TestUsageErrorsAreConcise: a usage error of any of the three programs
// prints one line naming the problem and a --help hint on stderr, nothing
// on stdout, and exits 2.
func TestUsageErrorsAreConcise(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(newDir(t), "v.sock")
	tests := []struct {
		name string
		bin  string
		args []string
		want string
	}{
		{"watch: required flags missing", binPath, nil, "--socket, --threshold-ms"},
		{"watch: one required flag missing", binPath, []string{"--socket", sock}, "--threshold-ms"},
		{"watch: bad number", binPath, []string{"--socket", sock, "--threshold-ms", "x"}, "threshold-ms"},
		{"watch: unknown flag", binPath, []string{"--bogus"}, "bogus"},
		{"watch: export to stdout with a size limit", binPath, []string{"--socket", sock, "--threshold-ms", "100", "--export-file", "-", "--export-file-max-bytes", "5000"}, "--export-file-max-bytes"},
		{"beat: unknown flag", beatPath, []string{"--bogus"}, "bogus"},
		{"beat: unknown command flag", beatPath, []string{"run", "--bogus"}, "bogus"},
		{"beat: unknown command", beatPath, []string{"nosuch"}, "nosuch"},
		{"audit: unknown flag", auditPath, []string{"--bogus"}, "bogus"},
		{"audit: unknown command flag", auditPath, []string{"verify", "--bogus", "x"}, "bogus"},
		{"audit: unknown command", auditPath, []string{"nosuch"}, "nosuch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := run(t, tt.bin, tt.args...)
			prog := filepath.Base(tt.bin)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr:\n%s", code, stderr)
			}
			if stdout != "" {
				t.Fatalf("stdout not empty (%d lines):\n%s", strings.Count(stdout, "\n"), stdout)
			}
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if len(lines) != 2 || !strings.HasPrefix(lines[0], prog+": ") || !strings.Contains(lines[0], tt.want) ||
				lines[1] != "Run '"+prog+" --help' for usage." {
				t.Fatalf("stderr, want one line naming %q and the --help hint:\n%s", tt.want, stderr)
			}
		})
	}
}

// TestBurstZeroMeansOff: --global-beat-burst 0 and --prom-rate-limit-burst 0
// are accepted (0 = off, as the flag table says, so existing unit files keep
// working): the daemon starts, 30 scrapes in a row are all served (the
// default per-client burst is 10), and it exits 0.
func TestBurstZeroMeansOff(t *testing.T) {
	t.Parallel()
	d := startWithMetrics(t, "--threshold-ms", "1000", "--global-beat-burst", "0", "--prom-rate-limit-burst", "0")
	s := d.dial()
	for i := range 30 {
		s.beat(uint64(i + 1))
		d.scrape() // fails the test on anything but 200
	}
	if got := d.metric(`varta_rate_limited_total{reason="global"}`); got != 0 {
		t.Fatalf("global rate limit dropped %v beats with the bucket off", got)
	}
	if code := d.Stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d:\n%s", code, d.Stderr.String())
	}
}
