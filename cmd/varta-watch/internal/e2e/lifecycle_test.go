package e2e

import (
	"encoding/json"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestClockJumpGivesGrace stops the observer for longer than the jump
// threshold while an agent keeps beating. When it resumes, the control
// loop sees an 8 s gap: it counts a forward jump and grants one threshold
// of grace, so the agent whose beats are still queued is not declared
// stalled.
func TestClockJumpGivesGrace(t *testing.T) {
	d := startWithMetrics(t, "--threshold-ms", "1000")
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
	d.waitEvents(10*time.Second, "beats", func(e []event) bool { return len(filter(e, "beat", selfPid)) >= 3 })
	d.cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(8 * time.Second)
	d.cmd.Process.Signal(syscall.SIGCONT)
	d.waitMetric("varta_observer_clock_jump_forward_total", 1)
	time.Sleep(1500 * time.Millisecond)
	if st := filter(d.readEvents(), "stall", selfPid); len(st) != 0 {
		t.Fatalf("agent declared stalled after the jump: %+v", st)
	}
}

// TestSIGHUPReopensEventsFile: after logrotate moves the file, SIGHUP
// makes the daemon write to a new file at the configured path.
func TestSIGHUPReopensEventsFile(t *testing.T) {
	d := start(t, "--threshold-ms", "60000")
	s := d.dial()
	s.beat(1)
	d.waitEvents(10*time.Second, "first beat", func(e []event) bool { return len(e) == 1 })
	if err := os.Rename(d.events, d.events+".1"); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	// Beats emitted after the reopen land in the new file.
	waitFor(t, 10*time.Second, "new events file", func() bool {
		s.beat(nonceNow())
		_, err := os.Stat(d.events)
		return err == nil
	})
	d.waitEvents(10*time.Second, "beats in the new file", func(e []event) bool { return len(filter(e, "beat", selfPid)) >= 1 })
	old, err := os.ReadFile(d.events + ".1")
	if err != nil || len(old) == 0 {
		t.Fatalf("rotated file lost its lines: %v", err)
	}
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

var nonceCounter atomic.Uint64

func nonceNow() uint64 { return 1000 + nonceCounter.Add(1) }

// TestLogFormats: text logs are "varta-watch: <message>" lines; JSON logs
// are one object per line with a msg field.
func TestLogFormats(t *testing.T) {
	d := start(t, "--threshold-ms", "1000")
	waitFor(t, 10*time.Second, "startup log", func() bool { return strings.Contains(d.stderr.String(), "observing") })
	for _, l := range strings.Split(strings.TrimSpace(d.stderr.String()), "\n") {
		if !strings.HasPrefix(l, "varta-watch: ") {
			t.Fatalf("text log line %q", l)
		}
	}
	j := start(t, "--threshold-ms", "1000", "--log-format", "json")
	waitFor(t, 10*time.Second, "startup log", func() bool { return strings.Contains(j.stderr.String(), "observing") })
	for _, l := range strings.Split(strings.TrimSpace(j.stderr.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["msg"] == nil || m["level"] == nil {
			t.Fatalf("json log line %q: %v", l, err)
		}
	}
}

// TestBoottimeClock: with --clock-source boottime the stall clock still
// surfaces a stall no earlier than the threshold.
func TestBoottimeClock(t *testing.T) {
	d := start(t, "--threshold-ms", "200", "--clock-source", "boottime")
	d.dial().beat(1)
	evs := d.waitEvents(10*time.Second, "a stall", func(e []event) bool { return len(filter(e, "stall", selfPid)) == 1 })
	b, s := filter(evs, "beat", selfPid)[0], filter(evs, "stall", selfPid)[0]
	if s.ns < b.ns+uint64(200*time.Millisecond) {
		t.Fatalf("stall at %d ns, beat at %d ns", s.ns, b.ns)
	}
}
