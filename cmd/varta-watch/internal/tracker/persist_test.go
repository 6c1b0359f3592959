package tracker

import (
	"slices"
	"testing"

	"github.com/varta-go/varta/pkg/vlp"
)

// TestSaveAdopt: a tracker adopted from another's saved state keeps the
// stalled agents stalled, surfaces the agents that stay silent, and
// accepts the agents that carry on.
func TestSaveAdopt(t *testing.T) {
	proc := fakeProc{10: {NSInode: 1, Generation: 100}, 11: {NSInode: 1, Generation: 200}}
	old, _ := newTracker(t, Options{Resolver: proc, SelfNS: 1})
	observe(old, beat(10, 5), vlp.OriginKernelAttested, 0)         // stalls before the save
	observe(old, beat(11, 7), vlp.OriginKernelAttested, 50*ms)     // keeps beating
	observe(old, beat(12, 9), vlp.OriginNetworkUnverified, 160*ms) // goes silent after the save
	old.Due(200*ms, func(Stall) {})
	observe(old, beat(11, 8), vlp.OriginKernelAttested, 210*ms)
	saved := old.Save(nil)
	if len(saved) != 3 {
		t.Fatalf("Save: %d slots, want 3", len(saved))
	}
	byPid := map[uint32]Saved{}
	for _, s := range saved {
		byPid[s.Pid] = s
	}
	if s := byPid[10]; !s.Stalled || s.Generation != 100 || s.NSInode != 1 || s.LastNonce != 5 || s.Stalls != 1 {
		t.Errorf("saved pid 10 = %+v", s)
	}
	if s := byPid[11]; s.Stalled || s.LastSeen != 210*ms || s.Beats != 2 {
		t.Errorf("saved pid 11 = %+v", s)
	}

	// The new daemon's clock starts elsewhere: shift the times.
	const shift = 1000 * ms
	for i := range saved {
		saved[i].LastSeen += shift
	}
	tr, _ := newTracker(t, Options{Resolver: proc, SelfNS: 1})
	now := 220*ms + shift
	pids, err := tr.Adopt(saved, now)
	if err != nil || !slices.Equal(pids, []uint32{10, 12, 11}) {
		t.Fatalf("Adopt = %v, %v; want [10 12 11] (stalled first, then oldest)", pids, err)
	}
	if s, _ := tr.Lookup(10); !s.Stalled || s.Stalls != 1 || s.Status != vlp.StatusStall {
		t.Errorf("pid 10 after adoption: %+v, want stalled (once)", s)
	}
	var stalled []uint32
	tr.Due(now+50*ms, func(s Stall) { stalled = append(stalled, s.Pid) })
	if !slices.Equal(stalled, []uint32{12}) {
		t.Fatalf("surfaced %v, want [12]: the stalled one is not surfaced again, the live ones on their deadline", stalled)
	}
	if s, _ := tr.Lookup(11); s.Stalled {
		t.Errorf("pid 11 is stalled, it kept beating")
	}
	// pid 11 carries on with the next nonce; pid 12 restarted and begins
	// again at 1: both are accepted once.
	if r := observe(tr, beat(11, 9), vlp.OriginKernelAttested, now+50*ms); r.Verdict != Accepted {
		t.Errorf("pid 11 next beat: %v", r.Verdict)
	}
	if r := observe(tr, beat(12, 1), vlp.OriginNetworkUnverified, now+50*ms); r.Verdict != Accepted {
		t.Errorf("pid 12 restarted at nonce 1: %v", r.Verdict)
	}
	if r := observe(tr, beat(12, 1), vlp.OriginNetworkUnverified, now+50*ms); r.Verdict != DroppedOutOfOrder {
		t.Errorf("pid 12 duplicate after the first frame: %v, want out_of_order", r.Verdict)
	}
	// A beat ends the adopted stall.
	if r := observe(tr, beat(10, 6), vlp.OriginKernelAttested, now+50*ms); r.Verdict != Accepted {
		t.Errorf("pid 10 resumes: %v", r.Verdict)
	}
	if s, _ := tr.Lookup(10); s.Stalled {
		t.Errorf("pid 10 still stalled after a beat")
	}
	// Adopting a tracked pid does nothing; adopting older live agents
	// behind newer ones is refused (it would break the deadline order).
	if pids, err := tr.Adopt([]Saved{{Pid: 11, LastSeen: now + 200*ms}}, now+200*ms); len(pids) != 0 || err != nil {
		t.Errorf("re-adopt: %v, %v", pids, err)
	}
	if _, err := tr.Adopt([]Saved{{Pid: 30, LastSeen: 0}}, now); err == nil {
		t.Errorf("adopting behind newer live agents succeeded")
	}
}

func TestAdoptBounds(t *testing.T) {
	tr, _ := newTracker(t, Options{Capacity: 2})
	saved := []Saved{{Pid: 1, LastSeen: 30}, {Pid: 2, LastSeen: 10}, {Pid: 3, LastSeen: 20}, {Pid: 0, LastSeen: 5}, {Pid: 4, LastSeen: 1 << 60, Stalled: true}}
	pids, err := tr.Adopt(saved, 100)
	if err != nil || !slices.Equal(pids, []uint32{4, 2}) {
		t.Fatalf("Adopt = %v, %v; want [4 2] (stalled first, then the longest silent, up to capacity)", pids, err)
	}
	if s, _ := tr.Lookup(4); s.LastSeen != 100 {
		t.Errorf("future LastSeen not clamped: %d", s.LastSeen)
	}
}
