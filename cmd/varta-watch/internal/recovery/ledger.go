package recovery

import "container/list"

// ledger remembers when each pid last had a recovery child spawned, for
// the debounce gate. It holds at most one entry per pid (the latest
// spawn, with that process's generation) and at most capacity entries,
// kept in spawn order so that the oldest entry is at the front.
type ledger struct {
	capacity int
	order    *list.List // of *ledgerEntry, oldest first
	byPid    map[uint32]*list.Element
}

type ledgerEntry struct {
	pid uint32
	gen uint64
	at  uint64 // observer ns of the spawn
}

func newLedger(capacity int) *ledger {
	return &ledger{capacity: capacity, order: list.New(), byPid: make(map[uint32]*list.Element)}
}

// age returns now - at, or 0 if the clock went backwards (a regression
// must never make an entry look older than it is).
func age(now, at uint64) uint64 {
	if now < at {
		return 0
	}
	return now - at
}

// genMatch reports whether two generations may name the same process: an
// unknown generation (0) matches any.
func genMatch(a, b uint64) bool { return a == 0 || b == 0 || a == b }

// fresh reports whether the same process (pid + generation) was recovered
// less than window ago.
func (l *ledger) fresh(pid uint32, gen, now, window uint64) bool {
	el, ok := l.byPid[pid]
	if !ok {
		return false
	}
	e := el.Value.(*ledgerEntry)
	return genMatch(e.gen, gen) && age(now, e.at) < window
}

// hasRoom reports whether record(pid, …) can succeed without evicting an
// entry younger than window. It does not change the ledger.
func (l *ledger) hasRoom(pid uint32, now, window uint64) bool {
	if _, ok := l.byPid[pid]; ok || l.order.Len() < l.capacity {
		return true
	}
	front := l.order.Front()
	return front != nil && age(now, front.Value.(*ledgerEntry).at) >= window
}

// record starts the debounce window of (pid, gen) at now, replacing the
// pid's previous entry or, if the ledger is full, evicting the oldest
// entry (hasRoom must have been checked).
func (l *ledger) record(pid uint32, gen, now uint64) {
	if el, ok := l.byPid[pid]; ok {
		e := el.Value.(*ledgerEntry)
		e.gen, e.at = gen, now
		l.order.MoveToBack(el)
		return
	}
	if l.order.Len() >= l.capacity {
		l.remove(l.order.Front())
	}
	l.byPid[pid] = l.order.PushBack(&ledgerEntry{pid: pid, gen: gen, at: now})
}

// prune drops entries older than maxAge.
func (l *ledger) prune(now, maxAge uint64) {
	for el := l.order.Front(); el != nil; el = l.order.Front() {
		if age(now, el.Value.(*ledgerEntry).at) < maxAge {
			return
		}
		l.remove(el)
	}
}

func (l *ledger) remove(el *list.Element) {
	delete(l.byPid, el.Value.(*ledgerEntry).pid)
	l.order.Remove(el)
}

func (l *ledger) len() int { return l.order.Len() }
