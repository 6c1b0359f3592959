package e2e

import (
	"encoding/json"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
)

// TestClockJumpGivesGrace stops the observer for longer than the jump
// threshold while an agent keeps beating. When it resumes, the control
// loop sees the gap: it counts a forward jump and grants one threshold of
// grace, so the agent whose beats are still queued is not declared
// stalled. The hidden --test-clock-jump-ms lowers the jump threshold from
// clock.JumpThreshold (5 s) to 2 s, so a 4 s stop (more than the threshold
// plus the 1 s tick) stages the jump.
func TestClockJumpGivesGrace(t *testing.T) {
	// Not parallel: it stops the daemon for seconds to stage one clock jump;
	// with other tests loading the machine a late tick could count a second
	// one.
	d := startWithMetrics(t, "--threshold-ms", "1000", "--test-clock-jump-ms", "2000")
	s := d.dial()
	var nonce atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				s.beat(nonce.Add(1))
			}
		}
	}()
	defer func() { close(stop); <-done }()
	d.WaitEvents(10*time.Second, "beats", func(e []event) bool { return len(testsupport.Filter(e, "beat", selfPid)) >= 3 })
	d.Cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(4 * time.Second) // the jump: silence is what is staged
	d.Cmd.Process.Signal(syscall.SIGCONT)
	d.waitMetric("varta_observer_clock_jump_forward_total", 1)
	time.Sleep(1500 * time.Millisecond)
	if st := testsupport.Filter(d.ReadEvents(), "stall", selfPid); len(st) != 0 {
		t.Fatalf("agent declared stalled after the jump: %+v", st)
	}
}

// TestSIGHUPReopensEventsFile: after logrotate moves the file, SIGHUP
// makes the daemon write to a new file at the configured path.
func TestSIGHUPReopensEventsFile(t *testing.T) {
	t.Parallel()
	d := start(t, "--threshold-ms", "60000")
	s := d.dial()
	s.beat(1)
	d.WaitEvents(10*time.Second, "first beat", func(e []event) bool { return len(e) == 1 })
	if err := os.Rename(d.EventsFile, d.EventsFile+".1"); err != nil {
		t.Fatal(err)
	}
	d.Cmd.Process.Signal(syscall.SIGHUP)
	// Beats emitted after the reopen land in the new file.
	testsupport.Eventually(t, 10*time.Second, "new events file", func() bool {
		s.beat(nonceNow())
		_, err := os.Stat(d.EventsFile)
		return err == nil
	})
	// The beat that saw the new file may have been written before the
	// reopen; this one is sent after it.
	s.beat(nonceNow())
	d.WaitEvents(10*time.Second, "beats in the new file", func(e []event) bool { return len(testsupport.Filter(e, "beat", selfPid)) >= 1 })
	old, err := os.ReadFile(d.EventsFile + ".1")
	if err != nil || len(old) == 0 {
		t.Fatalf("rotated file lost its lines: %v", err)
	}
	if code := d.Stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

var nonceCounter atomic.Uint64

func nonceNow() uint64 { return 1000 + nonceCounter.Add(1) }

// TestLogFormats: text logs are "varta-watch: <message>" lines; JSON logs
// are one object per line with a msg field.
func TestLogFormats(t *testing.T) {
	t.Parallel()
	d := start(t, "--threshold-ms", "1000")
	testsupport.Eventually(t, 10*time.Second, "startup log", func() bool { return strings.Contains(d.Stderr.String(), "observing") })
	for _, l := range strings.Split(strings.TrimSpace(d.Stderr.String()), "\n") {
		if !strings.HasPrefix(l, "varta-watch: ") {
			t.Fatalf("text log line %q", l)
		}
	}
	j := start(t, "--threshold-ms", "1000", "--log-format", "json")
	testsupport.Eventually(t, 10*time.Second, "startup log", func() bool { return strings.Contains(j.Stderr.String(), "observing") })
	for _, l := range strings.Split(strings.TrimSpace(j.Stderr.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["msg"] == nil || m["level"] == nil {
			t.Fatalf("json log line %q: %v", l, err)
		}
	}
}

// TestBoottimeClock: with --clock-source boottime the stall clock still
// surfaces a stall no earlier than the threshold.
func TestBoottimeClock(t *testing.T) {
	t.Parallel()
	d := start(t, "--threshold-ms", "200", "--clock-source", "boottime")
	d.dial().beat(1)
	evs := d.WaitEvents(10*time.Second, "a stall", func(e []event) bool { return len(testsupport.Filter(e, "stall", selfPid)) == 1 })
	b, s := testsupport.Filter(evs, "beat", selfPid)[0], testsupport.Filter(evs, "stall", selfPid)[0]
	if s.NS < b.NS+uint64(200*time.Millisecond) {
		t.Fatalf("stall at %d ns, beat at %d ns", s.NS, b.NS)
	}
}
