package e2e

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeNotify binds a fake NOTIFY_SOCKET in dir (listenNotify) and returns
// its path and what arrives on it.
func fakeNotify(t *testing.T, dir string) (string, <-chan notifyMsg) {
	t.Helper()
	n := listenNotify(t, dir)
	return n.path, n.msgs
}

// TestWatchdogPingsWithinHalfTimeout: for WATCHDOG_USEC of 1 s and 10 s,
// every gap from READY=1 to the first WATCHDOG=1 and between consecutive
// pings is at most half the timeout, as systemd requires for a healthy
// daemon never to be killed. The daemon runs with the self-watchdog at its
// 1 s minimum too, which must not fire on a healthy loop.
func TestWatchdogPingsWithinHalfTimeout(t *testing.T) {
	// Not parallel: it measures the gaps between watchdog pings.
	for _, tt := range []struct {
		usec  string
		limit time.Duration
		pings int
	}{
		{"1000000", 500 * time.Millisecond, 8},
		{"10000000", 5 * time.Second, 3},
	} {
		t.Run(tt.usec, func(t *testing.T) {
			t.Parallel()
			dir := newDir(t)
			nsock, msgs := fakeNotify(t, dir)
			d := startIn(t, dir, []string{"NOTIFY_SOCKET=" + nsock, "WATCHDOG_USEC=" + tt.usec},
				"--threshold-ms", "1000", "--self-watchdog-secs", "1")
			var last time.Time
			var widest time.Duration
			pings := 0
			deadline := time.After(time.Duration(tt.pings+2) * tt.limit * 2)
			for pings < tt.pings {
				select {
				case m, ok := <-msgs:
					if !ok {
						t.Fatal("notify socket closed")
					}
					switch {
					case m.text == "READY=1":
						last = m.at
					case m.text == "WATCHDOG=1":
						if last.IsZero() {
							t.Fatal("WATCHDOG=1 before READY=1")
						}
						gap := m.at.Sub(last)
						if gap > tt.limit {
							t.Fatalf("ping %d came %v after the previous notification, limit %v", pings+1, gap, tt.limit)
						}
						widest = max(widest, gap)
						last = m.at
						pings++
					}
				case <-deadline:
					t.Fatalf("only %d pings", pings)
				}
			}
			t.Logf("WATCHDOG_USEC=%s: %d pings, widest gap %v (limit %v)", tt.usec, pings, widest.Round(time.Millisecond), tt.limit)
			if code := d.Stop(syscall.SIGTERM); code != 0 {
				t.Fatalf("exit %d: %s", code, d.Stderr.String())
			}
		})
	}
}

// TestSelfWatchdogMinimumHealthy: --self-watchdog-secs 1 on an idle, healthy
// daemon (no systemd watchdog) does not abort it.
func TestSelfWatchdogMinimumHealthy(t *testing.T) {
	// Not parallel: a 1 s self-watchdog must not fire on a healthy loop, which
	// other tests loading the machine would turn into a test of the machine.
	d := start(t, "--threshold-ms", "1000", "--self-watchdog-secs", "1")
	select {
	case <-d.Done:
		t.Fatalf("daemon ended on its own: %v\n%s", d.ExitErr, d.Stderr.String())
	case <-time.After(5 * time.Second):
	}
	if code := d.Stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d: %s", code, d.Stderr.String())
	}
	if strings.Contains(d.Stderr.String(), "self-watchdog") {
		t.Fatalf("self-watchdog complained:\n%s", d.Stderr.String())
	}
}

// TestStatusLine: the daemon tells the service manager how it is doing
// (STATUS= with agents and stalls), and not on every tick.
func TestStatusLine(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	nsock, msgs := fakeNotify(t, dir)
	d := startIn(t, dir, []string{"NOTIFY_SOCKET=" + nsock}, "--threshold-ms", "300")
	s := d.dial()
	s.beat(1)
	began := time.Now()
	statuses := waitStatus(t, msgs, 12*time.Second, "showing the stall", func(s string) bool {
		return strings.Contains(s, "1 agents, 1 stalled")
	})
	elapsed := time.Since(began)
	if max := int(elapsed/(5*time.Second)) + 2; len(statuses) > max {
		t.Fatalf("%d STATUS= lines in %v: %q", len(statuses), elapsed, statuses)
	}
	if code := d.Stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestStatusLineLastError: the STATUS= line carries the last warning (here
// the start-up warning about a recovery program that is not runnable), so
// that `systemctl status` shows what went wrong.
func TestStatusLineLastError(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	nsock, msgs := fakeNotify(t, dir)
	missing := filepath.Join(dir, "no-such-program")
	d := startIn(t, dir, []string{"NOTIFY_SOCKET=" + nsock}, "--threshold-ms", "1000", "--recovery-exec", missing+" {pid}")
	waitStatus(t, msgs, 10*time.Second, "naming the last error", func(s string) bool {
		return strings.Contains(s, "0 agents, 0 stalled") && strings.Contains(s, "; last error: recovery program is not runnable now") &&
			strings.Contains(s, missing)
	})
	if code := d.Stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// waitStatus reads notifications until a STATUS= line for which match is
// true, and returns every STATUS= line read; it fails t (naming what) after
// timeout.
func waitStatus(t *testing.T, msgs <-chan notifyMsg, timeout time.Duration, what string, match func(string) bool) []string {
	t.Helper()
	var statuses []string
	deadline := time.After(timeout)
	for {
		select {
		case m := <-msgs:
			if strings.HasPrefix(m.text, "STATUS=") {
				statuses = append(statuses, m.text)
				if match(m.text) {
					return statuses
				}
			}
		case <-deadline:
			t.Fatalf("no STATUS= %s; got %q", what, statuses)
		}
	}
}
