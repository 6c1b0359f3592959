package lifecycle

import (
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// SelfWatchdog aborts the process when the observer loop stops making
// progress: a goroutine samples a progress counter every timeout/4, pokes
// the loop so that a healthy one advances the counter right away (progress
// does not wait for the loop's housekeeping tick), and, when the counter has
// not advanced for timeout, calls abort once with a message naming the stage
// the loop is stuck in.
type SelfWatchdog struct {
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// NewSelfWatchdog starts the self-watchdog. progress returns the loop's
// iteration counter and the name of the stage it is in (for example
// "idle", "stall detection", "recovery"); poke (nil: none) wakes the loop
// without blocking; abort is DefaultAbort in production. A non-positive
// timeout starts nothing.
func NewSelfWatchdog(timeout time.Duration, progress func() (count uint64, stage string), poke func(), abort func(msg string)) *SelfWatchdog {
	s := &SelfWatchdog{stop: make(chan struct{}), done: make(chan struct{})}
	if timeout <= 0 || progress == nil || abort == nil {
		close(s.done)
		return s
	}
	if poke == nil {
		poke = func() {}
	}
	go s.run(timeout, progress, poke, abort)
	return s
}

func (s *SelfWatchdog) run(timeout time.Duration, progress func() (uint64, string), poke func(), abort func(string)) {
	defer close(s.done)
	check := max(timeout/4, time.Millisecond)
	t := time.NewTicker(check)
	defer t.Stop()
	last, _ := progress()
	lastChange := time.Now()
	poke()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		count, stage := progress()
		poke()
		now := time.Now()
		if count != last {
			last, lastChange = count, now
			continue
		}
		if stalled := now.Sub(lastChange); stalled >= timeout {
			abort(fmt.Sprintf("self-watchdog: observer loop made no progress for %v (limit %v), wedged in stage %q at tick %d; aborting",
				stalled.Round(time.Millisecond), timeout, stage, count))
			return
		}
	}
}

// Stop stops the self-watchdog and waits for its goroutine. It is
// idempotent.
func (s *SelfWatchdog) Stop() {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
}

// DefaultAbort writes "varta-watch: <msg>" to standard error and raises
// SIGABRT on the process. The Go runtime prints every goroutine's stack
// (showing where the loop is wedged) and, with the traceback level raised to
// "crash", re-raises SIGABRT with its default action: the process dies of
// the signal (a core dump where core limits allow it), so the service manager
// and core-dump tooling see a crash rather than the configuration-error exit
// status 2. It does not return.
func DefaultAbort(msg string) {
	fmt.Fprintf(os.Stderr, "varta-watch: %s\n", msg)
	debug.SetTraceback("crash")
	signal.Reset(unix.SIGABRT) // undo any signal.Notify so the signal kills
	_ = unix.Kill(unix.Getpid(), unix.SIGABRT)
	// The signal is delivered asynchronously; should it be blocked
	// anyway, do not carry on as if nothing happened.
	time.Sleep(5 * time.Second)
	os.Exit(134)
}
