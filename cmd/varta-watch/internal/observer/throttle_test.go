package observer

import (
	"testing"
	"time"
)

func TestThrottle(t *testing.T) {
	var th throttle
	t0 := time.Unix(100, 0)
	steps := []struct {
		at         time.Duration
		ok         bool
		suppressed int
	}{
		{0, true, 0},
		{time.Millisecond, false, 0},
		{time.Second, false, 0},
		{9 * time.Second, false, 0},
		{10 * time.Second, true, 3},
		{11 * time.Second, false, 0},
		{30 * time.Second, true, 1},
	}
	for i, s := range steps {
		ok, n := th.allow(t0.Add(s.at), 10*time.Second)
		if ok != s.ok || n != s.suppressed {
			t.Fatalf("step %d at %v: allow = %v, %d; want %v, %d", i, s.at, ok, n, s.ok, s.suppressed)
		}
	}
}
