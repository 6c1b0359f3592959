package listener

import (
	"fmt"
	"time"
)

// Alarm is what the control loop sleeps on between its deadlines: a
// one-shot timer that Kick ends early. On Linux it is the Pacer's timerfd
// in the runtime's poller, so an idle daemon's wake-ups are one thread
// each: a runtime timer would also wake the scheduler's monitor thread,
// and a goroutine that hands a timer's tick on over a channel wakes a
// second thread to run the receiver (docs/benchmarks.md, "Idle CPU and
// drain interval").
//
// Sleep is called by one goroutine only; Kick from any goroutine. A Kick
// that comes while no Sleep is in progress ends the next one at once.
type Alarm struct{ w *waiter }

// NewAlarm returns an alarm, or the error creating its timer.
func NewAlarm() (*Alarm, error) {
	w, err := newWaiter()
	if err != nil {
		return nil, fmt.Errorf("control loop timer: %w", err)
	}
	return &Alarm{w: w}, nil
}

// Sleep returns after d, at a Kick, or at once when the alarm is closed.
// A d below one nanosecond sleeps one nanosecond.
func (a *Alarm) Sleep(d time.Duration) {
	a.w.pause(max(d, time.Nanosecond))
}

// Kick ends the current Sleep, or the next one, at once.
func (a *Alarm) Kick() { a.w.kick() }

// Close releases the timer; a Sleep in progress ends and every later one
// returns at once.
func (a *Alarm) Close() { a.w.close() }
