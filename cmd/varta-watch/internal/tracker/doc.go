// Package tracker owns the observer's per-pid state: one slot per tracked
// agent, the nonce and origin rules that decide whether a decoded frame is
// accepted, pid-recycle detection, capacity and eviction, and the deadline
// structure that says which agent stalls next.
//
// Because every agent shares one threshold, deadlines are ordered exactly
// like the agents' last accepted frames. The tracker keeps live slots in a
// list ordered by that time (an accepted frame moves its slot to the tail),
// so both accepting a beat and finding the next due stall are O(1) and
// independent of the number of agents.
//
// The tracker does no I/O of its own except through the injected Resolver
// (identity reads from /proc) and never emits events: it returns verdicts
// and the caller (ingest, observer) turns them into events, metrics and
// recovery. Per-slot fields read by the metrics exporter are atomics, so a
// scrape never takes the tracker lock.
//
// # Locking
//
// One rule: the tracker's lock is private, and every exported method of
// Tracker takes it itself. The only way to hold it across several calls
// is Update, whose callback gets a *Tx (Observe, ObserveIdentified,
// GaspPending) valid for that callback only; ingest uses it once per
// received batch.
//
// Nothing but memory work happens under the lock. Reads of /proc (the
// Resolver, and Sweep's liveness check) are made without it: Tx.Observe
// returns NeedIdentity instead of reading, and the caller reads the
// identity with Identify and finishes with Tx.ObserveIdentified; Due and
// Sweep list their candidates under the lock, read /proc without it, and
// re-check under it that each slot is unchanged (same pid, same stream,
// no frame accepted since) before deciding. A slot that accepted a beat
// while its stall was being checked is therefore not surfaced.
//
// Lock order: tracker, then the events writer. Callbacks that run under
// the lock (Update's, Due's, Sweep's) may emit events-file lines (the
// writer has its own lock and never blocks) but must not call back into
// the Tracker. Due and Sweep are serialised by a second lock taken before
// the tracker lock (scan, then tracker). The replay guard and the global
// bucket in ingest have locks of their own, never held together with the
// tracker lock.
package tracker
