package tracker

import (
	"fmt"
	"slices"

	"github.com/varta-go/varta/pkg/vlp"
)

// Saved is the state of one slot as kept across a daemon restart.
// LastSeen is on the stall clock of the daemon that produced or adopts it.
type Saved struct {
	Pid            uint32
	Origin         vlp.Origin
	Generation     uint64 // process start time (kernel-attested), 0 = unknown
	NSInode        uint64
	LastSeen       int64
	LastNonce      uint64
	HasNonce       bool
	LastTerminalTs uint64
	HasTerminal    bool
	Stalled        bool
	CrossNamespace bool
	Stalls, Beats  uint64
}

// Save appends the state of every occupied slot to dst and returns it.
func (t *Tracker) Save(dst []Saved) []Saved {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range t.slots {
		s := &t.slots[i]
		pid := s.pid.Load()
		if pid == 0 {
			continue
		}
		dst = append(dst, Saved{
			Pid: pid, Origin: s.origin, Generation: s.generation, NSInode: s.nsInode,
			LastSeen: s.lastSeen, LastNonce: s.lastNonce, HasNonce: s.hasNonce,
			LastTerminalTs: s.lastTerminalTs, HasTerminal: s.hasTerminal,
			Stalled: s.list == listStalled, CrossNamespace: s.crossNS,
			Stalls: s.stalls.Load(), Beats: s.beats.Load(),
		})
	}
	return dst
}

// Adopt re-creates slots from a previous daemon's state, normally into an
// empty tracker before any beat is read. A slot saved as stalled is
// adopted stalled (it is not surfaced again: the caller reports it); the
// others are live, ordered by LastSeen, and surfaced by Due when their
// deadline passes (the caller normally grants a Grace first). LastSeen
// values after now are taken as now. A slot's first frame after the
// adoption starts a new stream whatever its nonce (the agent may have
// restarted while no daemon ran; kernel-attested agents are re-identified
// by the caller before adoption). Pids already tracked are skipped; when
// the table fills up the rest is dropped (the stalled and the longest
// silent agents come first). It returns the adopted slots' pids.
func (t *Tracker) Adopt(saved []Saved, now int64) ([]uint32, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	sorted := slices.Clone(saved)
	for i := range sorted {
		sorted[i].LastSeen = min(sorted[i].LastSeen, now)
	}
	// Stalled first, then by last-seen time (the live list is ordered by it).
	slices.SortStableFunc(sorted, func(a, b Saved) int {
		switch {
		case a.Stalled != b.Stalled:
			if a.Stalled {
				return -1
			}
			return 1
		case a.LastSeen < b.LastSeen:
			return -1
		case a.LastSeen > b.LastSeen:
			return 1
		}
		return 0
	})
	for _, v := range sorted {
		if v.Stalled {
			continue
		}
		// Adopted slots join the command line's list (index 0) until their
		// identity is known again.
		if tail := t.liveTail[0]; tail != nilIdx && t.slots[tail].lastSeen > v.LastSeen {
			return nil, fmt.Errorf("tracker: adopt into a tracker that already has newer live agents")
		}
		break // the oldest live one decides
	}
	var adopted []uint32
	for _, v := range sorted {
		if v.Pid == 0 {
			continue
		}
		if _, known := t.lookup(v.Pid); known {
			continue
		}
		if len(t.free) == 0 {
			break
		}
		idx := t.free[len(t.free)-1]
		t.free = t.free[:len(t.free)-1]
		t.setIndex(v.Pid, idx)
		t.tracked.Add(1)
		t.reset(idx, v.Pid, stream{origin: v.Origin, crossNS: v.CrossNamespace})
		s := &t.slots[idx]
		s.generation, s.nsInode = v.Generation, v.NSInode
		s.lastNonce, s.hasNonce = v.LastNonce, v.HasNonce
		s.lastTerminalTs, s.hasTerminal = v.LastTerminalTs, v.HasTerminal
		s.gaspSent = v.HasTerminal && !v.HasNonce
		s.lastSeen = v.LastSeen
		s.adopted = true
		s.beats.Store(v.Beats)
		s.stalls.Store(v.Stalls)
		if v.Stalled {
			s.status.Store(uint32(vlp.StatusStall))
			t.pushBack(idx, listStalled)
		} else {
			t.pushBack(idx, listLive)
		}
		adopted = append(adopted, v.Pid)
	}
	return adopted, nil
}
