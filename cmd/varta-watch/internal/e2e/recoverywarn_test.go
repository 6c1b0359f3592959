package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
)

// TestRecoveryProgramWarnedAtStart: an absolute recovery program that does
// not exist or is not executable is reported at start (a warning naming the
// path; the daemon still starts, spawns fail as spawn_failed); a runnable
// one and a bare name (looked up at each spawn) are not.
func TestRecoveryProgramWarnedAtStart(t *testing.T) {
	t.Parallel()
	const warning = "recovery program is not runnable now"
	dir := newDir(t)
	plain := filepath.Join(dir, "not-executable")
	if err := os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, program string
		warn          bool
	}{
		{"missing", filepath.Join(dir, "no-such-program"), true},
		{"not executable", plain, true},
		{"directory", dir, true},
		{"runnable", "/bin/true", false},
		{"bare name", "true", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := start(t, "--threshold-ms", "1000", "--recovery-exec", tt.program+" {pid}")
			if tt.warn {
				testsupport.Eventually(t, 10*time.Second, "the warning", func() bool { return strings.Contains(d.Stderr.String(), warning) })
				if !strings.Contains(d.Stderr.String(), tt.program) {
					t.Fatalf("warning does not name %s:\n%s", tt.program, d.Stderr.String())
				}
			}
			if code := d.Stop(syscall.SIGTERM); code != 0 {
				t.Fatalf("exit %d", code)
			}
			if got := strings.Contains(d.Stderr.String(), warning); got != tt.warn {
				t.Fatalf("warned = %v, want %v:\n%s", got, tt.warn, d.Stderr.String())
			}
		})
	}
}
