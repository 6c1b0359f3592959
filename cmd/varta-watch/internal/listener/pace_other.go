//go:build !linux

package listener

import (
	"sync"
	"time"
)

// waiter is the Pacer's pause: a runtime timer and a kick channel.
type waiter struct {
	timer *time.Timer
	kickc chan struct{}
	done  chan struct{}
	once  sync.Once
}

func newWaiter() (*waiter, error) {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &waiter{timer: t, kickc: make(chan struct{}, 1), done: make(chan struct{})}, nil
}

func (w *waiter) pause(d time.Duration) {
	w.timer.Reset(d)
	select {
	case <-w.timer.C:
	case <-w.kickc:
		w.timer.Stop()
	case <-w.done:
	}
}

func (w *waiter) kick() {
	select {
	case w.kickc <- struct{}{}:
	default:
	}
}

func (w *waiter) close() { w.once.Do(func() { close(w.done) }) }
