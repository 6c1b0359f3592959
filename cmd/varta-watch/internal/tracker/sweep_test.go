package tracker

import (
	"testing"

	"github.com/varta-go/varta/cmd/varta-watch/internal/procfs"
	"github.com/varta-go/varta/pkg/vlp"
)

// TestSweepGoesRoundTheStalledList: Sweep checks at most max slots per
// call, only stalled kernel-attested ones, and goes on where it stopped,
// so that dead processes behind long-lived stalled ones (and behind
// stalled UDP agents, which it never checks) are retired within a few
// calls; agents that beat are never checked.
func TestSweepGoesRoundTheStalledList(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		alive, dead, udp, ok  int // stalled kernel-attested alive / dead, stalled UDP, live
		calls                 int // Sweep(64) calls
		wantRetired, wantLeft int
	}{
		{"dead behind alive", 100, 200, 0, 0, 5, 200, 100},
		{"one call retires at most max", 0, 200, 0, 0, 1, 64, 136},
		{"udp agents are skipped", 10, 50, 3000, 500, 2, 50, 10 + 3000 + 500},
		{"nothing stalled", 0, 0, 0, 1000, 3, 0, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proc := fakeProc{}
			total := tc.alive + tc.dead + tc.udp + tc.ok
			tr, _ := newTracker(t, Options{Capacity: total + 1, Resolver: proc, SelfNS: 1})
			pid := uint32(100)
			kind := map[uint32]string{}
			add := func(n int, k string, origin vlp.Origin, now int64) {
				for i := 0; i < n; i++ {
					pid++
					proc[pid] = procfs.Identity{NSInode: 1, Generation: 1}
					kind[pid] = k
					if r := observe(tr, beat(pid, 1), origin, now); r.Verdict != Accepted {
						t.Fatalf("pid %d: %v", pid, r.Verdict)
					}
				}
			}
			// The alive ones stall first: they are at the head of the
			// stalled list.
			add(tc.alive, "alive", vlp.OriginKernelAttested, 0)
			add(tc.udp/2, "udp", vlp.OriginNetworkUnverified, 0)
			add(tc.dead, "dead", vlp.OriginKernelAttested, 0)
			add(tc.udp-tc.udp/2, "udp", vlp.OriginNetworkUnverified, 0)
			add(tc.ok, "ok", vlp.OriginNetworkUnverified, 50*ms)
			tr.Due(100*ms, func(Stall) {})
			checked := map[uint32]int{}
			for range tc.calls {
				tr.Sweep(64, func(p uint32) bool {
					checked[p]++
					return kind[p] != "dead"
				})
			}
			for p, n := range checked {
				if kind[p] != "alive" && kind[p] != "dead" {
					t.Errorf("pid %d (%s) checked %d times", p, kind[p], n)
				}
			}
			if got := len(checked); got > 64*tc.calls {
				t.Errorf("%d pids checked in %d calls of at most 64", got, tc.calls)
			}
			if got := tr.Tracked(); got != tc.wantLeft || total-got != tc.wantRetired {
				t.Errorf("%d tracked, %d retired; want %d and %d", got, total-got, tc.wantLeft, tc.wantRetired)
			}
		})
	}
}

// BenchmarkSweepFullTable: one housekeeping Sweep over a full table of
// 1,048,576 agents that beat (none stalled), the work it does under the
// tracker lock every tick.
func BenchmarkSweepFullTable(b *testing.B) {
	const n = 1 << 20
	tr, err := New(Options{Capacity: n, Threshold: 10 * ms, PidLimit: MaxDenseIndex}, nil)
	if err != nil {
		b.Fatal(err)
	}
	f := vlp.Frame{Nonce: 1}
	for i := 0; i < n; i++ {
		f.Pid = uint32(2 + i)
		tr.Observe(&f, vlp.OriginNetworkUnverified, int64(i))
	}
	alive := func(uint32) bool { return true }
	for b.Loop() {
		tr.Sweep(64, alive)
	}
}
