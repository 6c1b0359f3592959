package secure

import (
	"slices"
	"time"
)

// PrefixMark is the persisted state of one iv_random prefix of a sender.
type PrefixMark struct {
	Random [IVRandomSize]byte
	// HW is the highest counter accepted under Random.
	HW  uint32
	Set bool
}

// SenderMark is the replay state of one sender, as saved across daemon
// restarts: with it restored, frames captured before the restart are
// refused after it exactly as they would have been without the restart.
type SenderMark struct {
	Pid       uint32
	LastSeen  time.Time // wall time of the last accepted frame
	Cur, Prev PrefixMark
	MaxNonce  uint64 // highest regular nonce accepted (if HasNonce)
	MaxTerm   uint64 // highest terminal timestamp accepted (if HasTerm)
	HasNonce  bool
	HasTerm   bool
}

// Marks appends the state of every tracked sender to dst, least recently
// accepted first, and returns it. It does not change the guard.
func (g *ReplayGuard) Marks(dst []SenderMark) []SenderMark {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := g.oldest; i >= 0; i = g.senders[i].newer {
		s := &g.senders[i]
		dst = append(dst, SenderMark{
			Pid:      s.pid,
			LastSeen: s.lastSeen,
			Cur:      PrefixMark{Random: s.cur.random, HW: s.cur.hw, Set: s.cur.set},
			Prev:     PrefixMark{Random: s.prev.random, HW: s.prev.hw, Set: s.prev.set},
			MaxNonce: s.maxNonce, MaxTerm: s.maxTerm,
			HasNonce: s.hasNonce, HasTerm: s.hasTerm,
		})
	}
	return dst
}

// Restore loads saved sender state, normally into an empty guard at
// start. Marks idle for at least the idle timeout at now are skipped (the
// guard would already have dropped them), as are pids the guard already
// tracks and marks beyond its capacity (the most recent marks are kept).
// A LastSeen after now (the wall clock went back) is taken as now. It
// returns the number of senders restored.
func (g *ReplayGuard) Restore(now time.Time, marks []SenderMark) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	sorted := slices.Clone(marks)
	for i := range sorted {
		if sorted[i].LastSeen.After(now) {
			sorted[i].LastSeen = now
		}
	}
	slices.SortStableFunc(sorted, func(a, b SenderMark) int { return a.LastSeen.Compare(b.LastSeen) })
	// Keep the newest marks that fit.
	room := g.cap - len(g.index)
	if room <= 0 {
		return 0
	}
	if len(sorted) > room {
		sorted = sorted[len(sorted)-room:]
	}
	n := 0
	for _, m := range sorted {
		if now.Sub(m.LastSeen) >= g.idle {
			continue
		}
		if _, ok := g.index[m.Pid]; ok {
			continue
		}
		var i int32
		if k := len(g.free); k > 0 {
			i = g.free[k-1]
			g.free = g.free[:k-1]
		} else {
			g.senders = append(g.senders, senderState{})
			i = int32(len(g.senders) - 1)
		}
		g.senders[i] = senderState{
			pid:      m.Pid,
			cur:      prefixState{random: m.Cur.Random, hw: m.Cur.HW, set: m.Cur.Set},
			prev:     prefixState{random: m.Prev.Random, hw: m.Prev.HW, set: m.Prev.Set},
			maxNonce: m.MaxNonce, maxTerm: m.MaxTerm,
			hasNonce: m.HasNonce, hasTerm: m.HasTerm,
			lastSeen: m.LastSeen,
		}
		g.index[m.Pid] = i
		g.pushNewest(i)
		n++
	}
	return n
}
