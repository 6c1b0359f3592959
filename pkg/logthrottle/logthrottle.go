package logthrottle

import "time"

// Limiter lets burst events through at once, then one per interval, and
// counts the events it holds back. It is the generic cell rate algorithm,
// which is a token bucket (burst tokens, one more every interval) kept in
// integers: with burst 1 an event passes when at least interval has gone
// by since the last one that passed.
//
// Build one with New or Every; the zero value lets everything through.
// A Limiter is not safe for concurrent use.
type Limiter struct {
	interval  int64 // ns per token
	tolerance int64 // (burst-1) * interval
	tat       int64 // theoretical arrival time of the next conforming event
	started   bool
	held      uint64 // events held back since the last TakeSuppressed
}

// New returns a Limiter that lets burst events through at once and one
// more every interval. burst < 1 counts as 1.
func New(burst int, interval time.Duration) Limiter {
	burst = max(burst, 1)
	return Limiter{interval: int64(interval), tolerance: int64(burst-1) * int64(interval)}
}

// Every returns a Limiter that lets one event through per interval.
func Every(interval time.Duration) Limiter { return New(1, interval) }

// Allow reports whether the event at now (nanoseconds on a monotonic
// clock) may be written; when it may not, it is counted.
func (l *Limiter) Allow(now int64) bool {
	if l.interval <= 0 {
		return true
	}
	if !l.started {
		l.started, l.tat = true, now
	}
	if now < l.tat-l.tolerance {
		l.held++
		return false
	}
	l.tat = max(l.tat, now) + l.interval
	return true
}

// AllowAt is Allow for a time.Time (its monotonic reading when it has one).
func (l *Limiter) AllowAt(t time.Time) bool { return l.Allow(int64(t.Sub(epoch))) }

// epoch turns time.Time values into Allow's nanoseconds.
var epoch = time.Now()

// Suppressed returns how many events were held back since the last
// TakeSuppressed.
func (l *Limiter) Suppressed() uint64 { return l.held }

// TakeSuppressed returns Suppressed and resets the count (the caller is
// about to report it).
func (l *Limiter) TakeSuppressed() uint64 {
	n := l.held
	l.held = 0
	return n
}

// Restart forgets the timing, so that the next event passes, and keeps
// the count (for a limit per distinct message: a new message restarts it).
func (l *Limiter) Restart() { l.started = false }
