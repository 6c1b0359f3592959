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
package tracker
