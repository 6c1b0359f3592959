package tracker

import (
	"runtime"
	"testing"

	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/pkg/vlp"
)

// TestMillionAgentCeiling fills a tracker at its ceiling — 1,048,576
// agents, the dense pid index at Linux's largest pid_max — and checks
// that every agent is tracked, that one more is refused as over capacity,
// that every stall surfaces in deadline order and none early, and that
// the table (slots, free list and pid index together) stays within the
// 512-byte budget per agent. The table holds no lock-free logic of its
// own beyond what the smaller tests run under the race detector, so it
// runs only without it.
func TestMillionAgentCeiling(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("fills the largest table: about 1 s, 30 s under the race detector; run without -race and -short")
	}
	const n = 1 << 20
	if MaxCapacity < n {
		t.Fatalf("MaxCapacity %d, want at least %d", MaxCapacity, n)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := stats.New()
	tr, err := New(Options{Capacity: MaxCapacity, Threshold: 10 * ms, PidLimit: MaxDenseIndex}, c)
	if err != nil {
		t.Fatal(err)
	}
	f := vlp.Frame{Nonce: 1}
	for i := 0; i < n; i++ {
		f.Pid = uint32(2 + i)
		if r := tr.Observe(&f, vlp.OriginNetworkUnverified, int64(i)); r.Verdict != Accepted || !r.First {
			t.Fatalf("pid %d: %v", f.Pid, r.Verdict)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("heap per tracked agent at %d agents, pid index for pid_max %d included: %.0f bytes", n, MaxDenseIndex, per)
	if per > 512 {
		t.Errorf("%.0f bytes per tracked agent, budget 512", per)
	}
	if tr.Tracked() != n {
		t.Fatalf("%d tracked, want %d", tr.Tracked(), n)
	}
	f.Pid = MaxDenseIndex - 1
	if r := tr.Observe(&f, vlp.OriginNetworkUnverified, n); r.Verdict != DroppedCapacity {
		t.Fatalf("agent %d: %v, want %v", n+1, r.Verdict, DroppedCapacity)
	}
	if got := c.TrackerCapacityExceeded.Load(); got != 1 {
		t.Fatalf("capacity exceeded %d, want 1", got)
	}
	// Half of the deadlines have passed at now: exactly those surface,
	// oldest first, none before its deadline.
	now := int64(10*ms) + n/2 - 1
	got, last := 0, int64(-1)
	tr.Due(now, func(s Stall) {
		if s.Deadline > s.Surfaced || s.Deadline < last || s.Pid != uint32(2+got) {
			t.Fatalf("stall %d: pid %d deadline %d surfaced %d (previous deadline %d)", got, s.Pid, s.Deadline, s.Surfaced, last)
		}
		last = s.Deadline
		got++
	})
	next, ok := tr.NextDeadline()
	if got != n/2 || !ok || next != now+1 {
		t.Fatalf("%d stalls surfaced, next deadline %d %v; want %d and %d", got, next, ok, n/2, now+1)
	}
	if tr.Stalled() != n/2 {
		t.Fatalf("%d stalled, want %d", tr.Stalled(), n/2)
	}
	runtime.KeepAlive(tr)
}
