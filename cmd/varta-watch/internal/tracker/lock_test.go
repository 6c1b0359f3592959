package tracker

import (
	"testing"

	"github.com/varta-go/varta/cmd/varta-watch/internal/procfs"
	"github.com/varta-go/varta/pkg/vlp"
)

// hookProc is a Resolver that runs hook on every read (the tracker lock
// must not be held then) before answering from ids.
type hookProc struct {
	ids  fakeProc
	hook func(pid uint32)
}

func (h *hookProc) Identity(pid uint32) (procfs.Identity, error) {
	h.hook(pid)
	return h.ids.Identity(pid)
}

// TestIdentityReadsRunUnlocked: every /proc read the tracker makes (first
// frame, nonce anomaly, origin upgrade, stall re-check) happens with the
// tracker lock free.
func TestIdentityReadsRunUnlocked(t *testing.T) {
	var tr *Tracker
	reads, held := 0, 0
	proc := &hookProc{ids: fakeProc{10: {NSInode: 1, Generation: 100}}, hook: func(uint32) {
		reads++
		if !tr.mu.TryLock() {
			held++
			return
		}
		tr.mu.Unlock()
	}}
	tr, _ = newTracker(t, Options{Resolver: proc, SelfNS: 1})
	observe(tr, beat(10, 5), vlp.OriginNetworkUnverified, 0) // no read
	observe(tr, beat(10, 1), vlp.OriginKernelAttested, ms)   // upgrade: read
	observe(tr, beat(10, 1), vlp.OriginKernelAttested, 2*ms) // anomaly: read
	observe(tr, beat(11, 1), vlp.OriginKernelAttested, 3*ms) // first frame, gone: read
	stalls := 0
	tr.Due(time100(), func(Stall) { stalls++ }) // re-check of pid 10: read
	if reads != 4 || held != 0 {
		t.Fatalf("%d identity reads, %d with the lock held", reads, held)
	}
	if stalls != 2 {
		t.Fatalf("%d stalls, want 2 (pid 10 re-checked, pid 11 socket-mode)", stalls)
	}
}

func time100() int64 { return 100 * ms * 10 }

// TestDueSparesSlotThatBeatDuringCheck: a beat accepted while Due reads
// the identity of a due slot makes it no longer due; Due leaves it live.
func TestDueSparesSlotThatBeatDuringCheck(t *testing.T) {
	var tr *Tracker
	armed := false
	proc := &hookProc{ids: fakeProc{10: {NSInode: 1, Generation: 100}, 11: {NSInode: 1, Generation: 7}}, hook: func(pid uint32) {
		if armed && pid == 10 {
			armed = false
			if r := tr.Observe(beat(10, 2), vlp.OriginKernelAttested, 150*ms); r.Verdict != Accepted {
				t.Errorf("late beat %+v", r)
			}
		}
	}}
	tr, _ = newTracker(t, Options{Resolver: proc, SelfNS: 1, Threshold: 100 * ms})
	observe(tr, beat(10, 1), vlp.OriginKernelAttested, 0)
	observe(tr, beat(11, 1), vlp.OriginKernelAttested, ms)
	armed = true
	var got []uint32
	tr.Due(150*ms, func(s Stall) { got = append(got, s.Pid) })
	if len(got) != 1 || got[0] != 11 {
		t.Fatalf("stalled %v, want [11]", got)
	}
	if s, _ := tr.Lookup(10); s.Stalled || s.LastNonce != 2 {
		t.Fatalf("pid 10: %+v", s)
	}
}

// TestDueOrderAcrossChecks: with more due kernel-attested slots than one
// round of checks holds, stalls still surface in deadline order, and a
// recycled pid is retired instead.
func TestDueOrderAcrossChecks(t *testing.T) {
	const n = 2*scanBatch + 17
	ids := fakeProc{}
	for p := uint32(2); p < n+2; p++ {
		ids[p] = procfs.Identity{NSInode: 1, Generation: uint64(p)}
	}
	tr, c := newTracker(t, Options{Resolver: ids, SelfNS: 1, Capacity: 2 * n, Threshold: 100 * ms})
	for p := uint32(2); p < n+2; p++ {
		observe(tr, beat(p, 1), vlp.OriginKernelAttested, int64(p))
		if p%2 == 0 {
			observe(tr, beat(p+1000, 1), vlp.OriginNetworkUnverified, int64(p)) // interleaved UDP agents
		}
	}
	ids[7] = procfs.Identity{NSInode: 1, Generation: 999} // recycled
	var last int64
	stalled := 0
	tr.Due(time100(), func(s Stall) {
		if s.Deadline < last {
			t.Fatalf("pid %d surfaced out of deadline order", s.Pid)
		}
		if s.Pid == 7 {
			t.Fatal("recycled pid surfaced")
		}
		last = s.Deadline
		stalled++
	})
	if want := n - 1 + (n+1)/2; stalled != want || c.TrackerPidRecycle.Load() != 1 {
		t.Fatalf("stalled %d want %d, recycled %d", stalled, want, c.TrackerPidRecycle.Load())
	}
}

// TestUpdateTx: inside Update, Observe reports NeedIdentity without
// changing anything, and ObserveIdentified decides with the identity given.
func TestUpdateTx(t *testing.T) {
	tr, c := newTracker(t, Options{Resolver: fakeProc{}, SelfNS: 1})
	var first, second Result
	f := beat(10, 1)
	tr.Update(func(tx *Tx) { first = tx.Observe(f, vlp.OriginKernelAttested, 0) })
	if first.Verdict != NeedIdentity || tr.Tracked() != 0 {
		t.Fatalf("%+v tracked %d", first, tr.Tracked())
	}
	tr.Update(func(tx *Tx) {
		second = tx.ObserveIdentified(f, vlp.OriginKernelAttested, 0, Identity{ID: procfs.Identity{NSInode: 2, Generation: 5}})
	})
	if second.Verdict != DroppedNamespace || c.FrameNamespaceMismatch.Load() != 1 {
		t.Fatalf("%+v", second)
	}
	tr.Update(func(tx *Tx) {
		second = tx.ObserveIdentified(f, vlp.OriginKernelAttested, 0, Identity{ID: procfs.Identity{NSInode: 1, Generation: 5}})
	})
	if s, ok := tr.Lookup(10); second.Verdict != Accepted || !ok || s.Generation != 5 {
		t.Fatalf("%+v %+v", second, s)
	}
	tr.Update(func(tx *Tx) {
		if !tx.GaspPending(10) || tx.GaspPending(11) {
			t.Error("GaspPending")
		}
	})
}

// TestSweepChecksUnlocked: the liveness check runs with the lock free, and
// a slot that changed meanwhile is not retired.
func TestSweepChecksUnlocked(t *testing.T) {
	var tr *Tracker
	ids := fakeProc{10: {NSInode: 1, Generation: 1}, 11: {NSInode: 1, Generation: 1}}
	tr, _ = newTracker(t, Options{Resolver: ids, SelfNS: 1, Threshold: 10 * ms})
	observe(tr, beat(10, 1), vlp.OriginKernelAttested, 0)
	observe(tr, beat(11, 1), vlp.OriginKernelAttested, 0)
	tr.Due(20*ms, func(Stall) {})
	tr.Sweep(64, func(pid uint32) bool {
		if !tr.mu.TryLock() {
			t.Fatal("alive called with the lock held")
		}
		tr.mu.Unlock()
		if pid == 11 {
			tr.Observe(beat(11, 2), vlp.OriginKernelAttested, 30*ms) // came back
		}
		return false
	})
	if _, ok := tr.Lookup(10); ok {
		t.Fatal("pid 10 not retired")
	}
	if _, ok := tr.Lookup(11); !ok {
		t.Fatal("pid 11 retired after it beat again")
	}
}

// TestSeenKeepsDeadlineOrder: a beat stamped earlier than one already
// accepted (its kernel arrival time, read late from another socket) is
// recorded at the later time, so the deadline list stays ordered and no
// stall is missed behind it.
func TestSeenKeepsDeadlineOrder(t *testing.T) {
	tr, _ := newTracker(t, Options{Threshold: 100 * ms})
	if r := observe(tr, beat(10, 1), vlp.OriginNetworkUnverified, 50*ms); r.Seen != 50*ms {
		t.Fatalf("seen %d", r.Seen)
	}
	if r := observe(tr, beat(11, 1), vlp.OriginNetworkUnverified, 40*ms); r.Seen != 50*ms {
		t.Fatalf("late-stamped beat seen at %d, want 50 ms", r.Seen)
	}
	var got []uint32
	tr.Due(150*ms, func(s Stall) { got = append(got, s.Pid) })
	if len(got) != 2 {
		t.Fatalf("stalled %v", got)
	}
}
