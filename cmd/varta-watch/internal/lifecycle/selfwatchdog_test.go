package lifecycle

import (
	"errors"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

type fakeAbort struct {
	mu   sync.Mutex
	msgs []string
	at   []time.Time
}

func (f *fakeAbort) abort(msg string) {
	f.mu.Lock()
	f.msgs = append(f.msgs, msg)
	f.at = append(f.at, time.Now())
	f.mu.Unlock()
}

func (f *fakeAbort) calls() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.msgs) }

func TestSelfWatchdogAbortsWedgedLoop(t *testing.T) {
	const timeout = 80 * time.Millisecond
	var count atomic.Uint64
	count.Store(41)
	var stage atomic.Value
	stage.Store("audit-fsync")
	fa := &fakeAbort{}
	start := time.Now()
	s := NewSelfWatchdog(timeout, func() (uint64, string) { return count.Load(), stage.Load().(string) }, nil, fa.abort)
	defer s.Stop()
	eventually(t, "abort", func() bool { return fa.calls() > 0 })
	fa.mu.Lock()
	msg, at := fa.msgs[0], fa.at[0]
	fa.mu.Unlock()
	if at.Sub(start) < timeout {
		t.Fatalf("aborted after %v, before the %v timeout", at.Sub(start), timeout)
	}
	for _, want := range []string{`"audit-fsync"`, "tick 41", "no progress"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("abort message %q does not contain %q", msg, want)
		}
	}
	time.Sleep(timeout)
	if n := fa.calls(); n != 1 {
		t.Fatalf("abort called %d times, want once", n)
	}
}

func TestSelfWatchdogQuietWhileProgressing(t *testing.T) {
	const timeout = 40 * time.Millisecond
	var count atomic.Uint64
	fa := &fakeAbort{}
	s := NewSelfWatchdog(timeout, func() (uint64, string) { return count.Load(), "receive" }, nil, fa.abort)
	// Advance for 6 timeouts, then freeze: the abort must come only after
	// the freeze.
	deadline := time.Now().Add(6 * timeout)
	var frozen time.Time // the last progress: the freeze starts here
	for time.Now().Before(deadline) {
		count.Add(1)
		frozen = time.Now()
		time.Sleep(timeout / 10)
	}
	if n := fa.calls(); n != 0 {
		t.Fatalf("aborted %d times while the loop was advancing: %q", n, fa.msgs)
	}
	eventually(t, "abort after the freeze", func() bool { return fa.calls() == 1 })
	if d := fa.at[0].Sub(frozen); d < timeout-timeout/4 {
		t.Fatalf("aborted %v after the freeze, want about %v", d, timeout)
	}
	s.Stop()
}

func TestSelfWatchdogStop(t *testing.T) {
	const fn = "lifecycle.(*SelfWatchdog).run("
	const timeout = 20 * time.Millisecond
	before := goroutinesIn(fn, 0)
	fa := &fakeAbort{}
	// The loop advances until Stop, then freezes: a watchdog still running
	// after Stop would abort within a few timeouts.
	var frozen atomic.Bool
	var count atomic.Uint64
	s := NewSelfWatchdog(timeout, func() (uint64, string) {
		if frozen.Load() {
			return count.Load(), "x"
		}
		return count.Add(1), "x"
	}, nil, fa.abort)
	if n := goroutinesIn(fn, before+1); n != before+1 {
		t.Fatalf("%d self-watchdog goroutines, want %d", n, before+1)
	}
	s.Stop()
	s.Stop()
	frozen.Store(true)
	if n := goroutinesIn(fn, before); n != before {
		t.Fatalf("%d self-watchdog goroutines after Stop, want %d", n, before)
	}
	time.Sleep(5 * timeout)
	if fa.calls() != 0 {
		t.Fatal("abort called after Stop")
	}
	NewSelfWatchdog(0, func() (uint64, string) { return 0, "" }, nil, fa.abort).Stop() // disabled
}

// TestDefaultAbort runs DefaultAbort in a child process: the message goes
// to stderr and the process dies of SIGABRT (Go prints the stacks).
func TestDefaultAbort(t *testing.T) {
	if inChild("abort") {
		// No core file from the test: the signal alone is checked.
		_ = unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{})
		DefaultAbort("self-watchdog: test wedged in stage \"recv\"")
		return
	}
	_, stderr, err := runChild(t, "TestDefaultAbort", "abort")
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("child exited with %v, want a failure", err)
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGABRT {
		t.Fatalf("child ended with %v (exit code %d), want death by SIGABRT", ee, ee.ExitCode())
	}
	for _, want := range []string{"varta-watch: self-watchdog: test wedged in stage \"recv\"\n", "SIGABRT", "goroutine"} {
		if !strings.Contains(string(stderr), want) {
			t.Fatalf("child stderr lacks %q:\n%s", want, stderr)
		}
	}
}

// slowLoop stands in for the observer loop: it iterates (advancing count)
// when poked and on its own housekeeping tick, which is far slower than the
// watchdogs' periods.
func slowLoop(t *testing.T, tick time.Duration) (count *atomic.Uint64, poke func()) {
	t.Helper()
	count = new(atomic.Uint64)
	ch := make(chan struct{}, 1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tk := time.NewTicker(tick)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ch:
			case <-tk.C:
			}
			count.Add(1)
		}
	})
	t.Cleanup(func() { close(stop); wg.Wait() })
	return count, func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// TestSelfWatchdogHealthyLoopSlowTick: a healthy loop whose housekeeping
// tick is slower than the self-watchdog timeout is never aborted, because
// the watchdog pokes it; without the poke it would be.
func TestSelfWatchdogHealthyLoopSlowTick(t *testing.T) {
	const timeout = 100 * time.Millisecond
	for _, tt := range []struct {
		name      string
		poke      bool
		wantAbort bool
	}{
		{"poked", true, false},
		{"not poked", false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			count, poke := slowLoop(t, 20*timeout)
			if !tt.poke {
				poke = nil
			}
			var fa fakeAbort
			s := NewSelfWatchdog(timeout, func() (uint64, string) { return count.Load(), "idle" }, poke, fa.abort)
			time.Sleep(8 * timeout)
			s.Stop()
			if got := fa.calls() > 0; got != tt.wantAbort {
				t.Fatalf("aborted = %v, want %v (messages %q)", got, tt.wantAbort, fa.msgs)
			}
		})
	}
}
