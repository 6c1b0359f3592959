package recovery

// LastSpawn returns the debounce-ledger entry of pid: the generation of
// the process and the time (observer ns) its last recovery child was
// spawned. The observer saves it across restarts.
func (r *Runner) LastSpawn(pid uint32) (gen, at uint64, ok bool) {
	el, found := r.ledger.byPid[pid]
	if !found {
		return 0, 0, false
	}
	e := el.Value.(*ledgerEntry)
	return e.gen, e.at, true
}

// RestoreSpawn seeds the debounce ledger with a spawn made by a previous
// daemon, so that a restart does not reopen the debounce window. Entries
// must be restored oldest first, before any stall is submitted; a full
// ledger drops its oldest entry.
func (r *Runner) RestoreSpawn(pid uint32, gen, at uint64) {
	r.ledger.record(pid, gen, at)
}
