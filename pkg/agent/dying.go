package agent

import (
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// TerminalOnSignal sends a terminal frame when the process receives one of
// sigs (SIGTERM and SIGINT when none are given) and then lets the signal take
// its normal course: this package stops catching it and re-raises it, so a
// program that does not handle the signal itself dies by it (exit status
// "killed by signal", as without the helper), and a program that also called
// signal.Notify for it receives it as usual. The helper fires at most once.
// The returned stop function undoes the arrangement; it is safe to call more
// than once.
func (a *Agent) TerminalOnSignal(sigs ...os.Signal) (stop func()) {
	if len(sigs) == 0 {
		sigs = []os.Signal{syscall.SIGTERM, syscall.SIGINT}
	}
	ch := make(chan os.Signal, 1)
	done := make(chan struct{})
	signal.Notify(ch, sigs...)
	go func() {
		select {
		case s := <-ch:
			a.Terminal()
			signal.Stop(ch)
			if sig, ok := s.(syscall.Signal); ok {
				_ = unix.Kill(unix.Getpid(), sig)
			}
		case <-done:
			signal.Stop(ch)
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }
}

// TerminalOnPanic, deferred at the top of a goroutine (typically main), sends
// a terminal frame when that goroutine panics and then re-panics with the
// same value, so the stack trace and the exit status are those of the
// original panic:
//
//	defer a.TerminalOnPanic()
//
// It must be deferred directly (not called from another deferred function),
// because recover only works there. It does nothing when there is no panic.
func (a *Agent) TerminalOnPanic() {
	if v := recover(); v != nil {
		a.Terminal()
		panic(v)
	}
}
