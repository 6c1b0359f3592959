package listener

import (
	"testing"
	"time"
)

// sleepReturns runs a.Sleep(d) and reports whether it returned within
// limit (a generous bound: the cases that must return do so at once).
func sleepReturns(a *Alarm, d, limit time.Duration) bool {
	done := make(chan struct{})
	go func() {
		a.Sleep(d)
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(limit):
		return false
	}
}

// sleeping starts a.Sleep(1h) and gives it 20 ms to begin (a Kick or
// Close must work in either order); done is closed when it returns.
func sleeping(a *Alarm) (done chan struct{}) {
	done = make(chan struct{})
	go func() {
		a.Sleep(time.Hour)
		close(done)
	}()
	time.Sleep(20 * time.Millisecond)
	return done
}

// waitEnded fails the test unless done is closed within 10 s of what
// (Kick or Close).
func waitEnded(t *testing.T, done chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not end Sleep(1h)", what)
	}
}

func TestAlarm(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, a *Alarm)
	}{
		{"sleeps at least d", func(t *testing.T, a *Alarm) {
			start := time.Now()
			a.Sleep(20 * time.Millisecond)
			if got := time.Since(start); got < 20*time.Millisecond {
				t.Fatalf("Sleep(20ms) returned after %v", got)
			}
		}},
		{"zero and negative durations return", func(t *testing.T, a *Alarm) {
			if !sleepReturns(a, 0, 10*time.Second) || !sleepReturns(a, -time.Hour, 10*time.Second) {
				t.Fatal("Sleep(0) or Sleep(-1h) did not return")
			}
		}},
		{"a kick before the sleep ends it at once, once", func(t *testing.T, a *Alarm) {
			a.Kick()
			if !sleepReturns(a, time.Hour, 10*time.Second) {
				t.Fatal("Sleep(1h) after Kick did not return")
			}
			// The kick is used up: the next sleep lasts.
			if sleepReturns(a, time.Hour, 100*time.Millisecond) {
				t.Fatal("a second Sleep(1h) returned without a Kick")
			}
			a.Kick() // ends the sleep still in progress
		}},
		{"a kick during the sleep ends it and is used up", func(t *testing.T, a *Alarm) {
			done := sleeping(a)
			a.Kick()
			waitEnded(t, done, "Kick")
			if sleepReturns(a, time.Hour, 100*time.Millisecond) {
				t.Fatal("a Sleep after the woken one returned without a new Kick")
			}
			a.Kick() // ends the sleep still in progress
		}},
		{"close ends the sleep and every later one", func(t *testing.T, a *Alarm) {
			done := sleeping(a)
			a.Close()
			waitEnded(t, done, "Close")
			if !sleepReturns(a, time.Hour, 10*time.Second) {
				t.Fatal("Sleep after Close did not return")
			}
			a.Kick() // harmless after Close
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := NewAlarm()
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			tc.run(t, a)
		})
	}
}
