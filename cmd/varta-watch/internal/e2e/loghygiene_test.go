package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
)

// TestLogHygiene: a SIGHUP storm logs the reopen line at most once per
// 10 s (the file is still reopened), and the non-loopback metrics warning
// reads "warn: metrics endpoint listens on …", not "warn: warning: …".
func TestLogHygiene(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	tf, _ := testsupport.TokenFile(t, dir)
	d := startIn(t, dir, nil, "--threshold-ms", "1000", "--prom-addr", "0.0.0.0:0", "--prom-token-file", tf)
	// SIGHUP is handled once the loop runs (the "observing" line).
	testsupport.Eventually(t, 10*time.Second, "the observing line", func() bool { return strings.Contains(d.Stderr.String(), "observing") })
	for range 500 {
		if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Microsecond)
	}
	time.Sleep(500 * time.Millisecond) // the storm is handled: the check below is "at most"
	if code := d.Stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d:\n%s", code, d.Stderr.String())
	}
	stderr := d.Stderr.String()
	if n := strings.Count(stderr, "reopening the events file"); n < 1 || n > 2 {
		t.Fatalf("%d reopen lines for 500 SIGHUPs within a second, want 1 or 2:\n%s", n, stderr)
	}
	if strings.Contains(stderr, "warning: ") {
		t.Fatalf("doubled warning prefix:\n%s", stderr)
	}
	if !strings.Contains(stderr, "warn: metrics endpoint listens on") {
		t.Fatalf("no non-loopback warning:\n%s", stderr)
	}
}
