package lifecycle

import (
	"sync"
	"time"
)

// StatusInterval is the least time between two STATUS= notifications.
const StatusInterval = 5 * time.Second

// StatusSender sends STATUS=<text> to the service manager at a modest rate:
// Set records the latest text without blocking, and a goroutine sends it
// when it differs from the last one sent, at most once per interval (the
// first one right away). Intermediate texts are dropped; the last one always
// goes out. Send errors are ignored (the watchdog pinger reports a broken
// notify socket).
type StatusSender struct {
	n        *Notifier
	interval time.Duration

	mu     sync.Mutex
	latest string
	sent   uint64

	kick     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// NewStatusSender starts a StatusSender through n, sending at most once per
// interval. With a disabled Notifier nothing is started and Set does
// nothing.
func NewStatusSender(n *Notifier, interval time.Duration) *StatusSender {
	s := &StatusSender{n: n, interval: interval, kick: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	if !n.Enabled() {
		close(s.done)
		return s
	}
	go s.run()
	return s
}

// Set records text as the current status. It never blocks.
func (s *StatusSender) Set(text string) {
	s.mu.Lock()
	changed := text != s.latest
	s.latest = text
	s.mu.Unlock()
	if !changed {
		return
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Sent returns how many STATUS= notifications were delivered.
func (s *StatusSender) Sent() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent
}

func (s *StatusSender) run() {
	defer close(s.done)
	var last string
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
		}
		s.mu.Lock()
		text := s.latest
		s.mu.Unlock()
		if text == last {
			continue
		}
		if err := s.n.Status(text); err == nil {
			last = text
			s.mu.Lock()
			s.sent++
			s.mu.Unlock()
		}
		select {
		case <-s.stop:
			return
		case <-time.After(s.interval):
		}
	}
}

// Stop stops the sender and waits for its goroutine. It is idempotent.
func (s *StatusSender) Stop() {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
}
