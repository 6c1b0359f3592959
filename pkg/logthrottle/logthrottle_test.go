package logthrottle

import (
	"testing"
	"time"
)

// TestLimiter drives limiters with an injected clock; each step is an
// event at a time, whether it passes, and (for a passing event) how many
// were held back since the last one that passed.
func TestLimiter(t *testing.T) {
	type step struct {
		at         time.Duration
		ok         bool
		suppressed uint64
	}
	const s, ms = time.Second, time.Millisecond
	tests := []struct {
		name     string
		burst    int
		interval time.Duration
		steps    []step
	}{
		{"one per 10 s", 1, 10 * s, []step{
			{0, true, 0},
			{ms, false, 0},
			{s, false, 0},
			{9 * s, false, 0},
			{10 * s, true, 3}, // exactly one interval after the last line
			{11 * s, false, 0},
			{30 * s, true, 1},
			{40*s - 1, false, 0}, // held-back events do not move the window
			{40 * s, true, 1},
		}},
		{"burst of 3, then 10 a second", 3, 100 * ms, []step{
			{0, true, 0},
			{0, true, 0},
			{0, true, 0},
			{0, false, 0},
			{0, false, 0},
			{99 * ms, false, 0},
			{100 * ms, true, 3},
			{100 * ms, false, 0},
			{10 * s, true, 1}, // idle: the burst is back, and no more
			{10 * s, true, 0},
			{10 * s, true, 0},
			{10 * s, false, 0},
		}},
		{"burst below 1 is 1", 0, s, []step{
			{0, true, 0},
			{0, false, 0},
			{s, true, 1},
		}},
		{"clock before the first event", 2, s, []step{
			{-5 * s, true, 0},
			{-5 * s, true, 0},
			{-5 * s, false, 0},
			{-4 * s, true, 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(tt.burst, tt.interval)
			t0 := time.Unix(1000, 0) // no monotonic reading: the wall clock is the injected clock
			for i, st := range tt.steps {
				ok := l.AllowAt(t0.Add(st.at))
				var n uint64
				if ok {
					n = l.TakeSuppressed()
				}
				if ok != st.ok || n != st.suppressed {
					t.Fatalf("step %d at %v: allow = %v, %d suppressed; want %v, %d", i, st.at, ok, n, st.ok, st.suppressed)
				}
			}
		})
	}
}

// TestRestart: a restarted limiter lets the next event through at once and
// keeps the count of what it held back before.
func TestRestart(t *testing.T) {
	l := Every(time.Minute)
	if !l.Allow(0) || l.Allow(1) || l.Allow(2) {
		t.Fatal("Every(1m) must pass the first event only")
	}
	l.Restart()
	if !l.Allow(3) {
		t.Fatal("the event after Restart was held back")
	}
	if n := l.Suppressed(); n != 2 {
		t.Fatalf("Suppressed = %d, want 2 (the count survives Restart)", n)
	}
	if n := l.TakeSuppressed(); n != 2 || l.Suppressed() != 0 {
		t.Fatalf("TakeSuppressed = %d, then %d; want 2, then 0", n, l.Suppressed())
	}
}

func TestZeroValuePassesAll(t *testing.T) {
	var l Limiter
	for i := range int64(5) {
		if !l.Allow(0) || !l.Allow(i) {
			t.Fatal("the zero Limiter held an event back")
		}
	}
}

func BenchmarkAllow(b *testing.B) {
	l := New(64, 100*time.Millisecond)
	b.ReportAllocs()
	for i := range b.N {
		l.Allow(int64(i) * 1000)
	}
}
