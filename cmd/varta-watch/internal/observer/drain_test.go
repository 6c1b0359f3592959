package observer

import (
	"testing"
	"time"
)

// fakeSocket settles for a since once it has been asked settleAfter times.
type fakeSocket struct {
	settleAfter int
	asked       int
	kicks       int
	lastSince   int64
}

func (f *fakeSocket) Settled(since int64) bool {
	f.asked++
	f.lastSince = since
	return f.asked > f.settleAfter
}

func (f *fakeSocket) Kick() { f.kicks++ }

func TestDrainSockets(t *testing.T) {
	const budget, poll = 20 * time.Millisecond, 100 * time.Microsecond
	for _, tc := range []struct {
		name        string
		settleAfter []int // per socket; -1: never
		want        bool
		wantKicks   []int // exact kicks, or -1 for "many"
	}{
		{"both settled at once", []int{0, 0}, true, []int{0, 0}},
		{"one settles after three polls", []int{0, 3}, true, []int{0, 3}},
		{"one never settles", []int{0, -1}, false, []int{0, -1}},
		{"unix only, settles after one poll", []int{1}, true, []int{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var socks []drainable
			var fakes []*fakeSocket
			for _, a := range tc.settleAfter {
				f := &fakeSocket{settleAfter: a}
				if a < 0 {
					f.settleAfter = int(^uint(0) >> 1)
				}
				fakes = append(fakes, f)
				socks = append(socks, f)
			}
			start := time.Now()
			got := drainSockets(42, socks, budget, poll)
			took := time.Since(start)
			if got != tc.want {
				t.Fatalf("drainSockets = %v, want %v", got, tc.want)
			}
			if !tc.want && took < budget {
				t.Fatalf("gave up after %v, before the %v budget", took, budget)
			}
			for i, f := range fakes {
				if f.lastSince != 42 {
					t.Errorf("socket %d asked about since %d, want 42", i, f.lastSince)
				}
				switch w := tc.wantKicks[i]; {
				case w >= 0 && f.kicks != w:
					t.Errorf("socket %d kicked %d times, want %d", i, f.kicks, w)
				case w < 0 && f.kicks < 2:
					t.Errorf("socket %d that never settled kicked %d times, want one per poll", i, f.kicks)
				}
			}
		})
	}
}
