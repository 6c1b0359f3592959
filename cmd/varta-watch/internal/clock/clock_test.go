package clock

import (
	"testing"
	"time"
)

func TestParseSource(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Source
		ok   bool
	}{{"monotonic", Monotonic, true}, {"boottime", Boottime, true}, {"realtime", 0, false}, {"", 0, false}} {
		got, err := ParseSource(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseSource(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestClockAdvances(t *testing.T) {
	for _, src := range []Source{Monotonic, Boottime} {
		c := New(src)
		a := c.Now()
		time.Sleep(5 * time.Millisecond)
		b := c.Now()
		if a < 0 || b-a < int64(4*time.Millisecond) {
			t.Errorf("%v: readings %d then %d after 5ms sleep", src, a, b)
		}
	}
}
