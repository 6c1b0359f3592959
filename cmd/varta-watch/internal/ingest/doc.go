// Package ingest owns admission for every transport: each received batch,
// whatever socket it came from, goes listener → ingest → tracker through
// one of the Pipeline's batch methods (UnixBatch, UDPBatch, SecureBatch).
// ingest applies size, kernel credentials and the uid/gid allow-lists, the
// global token bucket, the AEAD and the replay guard (secure UDP),
// decoding, the sender-identity check (frame pid = kernel pid), the
// pid_max check for unauthenticated transports, and hands the frame to
// the tracker. It turns every refusal into a counter and, where the events
// file has a line for it, an event.
//
// Locking: the checks before the tracker run without the tracker lock;
// the global bucket and the replay guard have locks of their own. The
// tracker lock is taken once per batch through tracker.Update to hand over
// the surviving frames and emit their events (lock order: tracker, then
// the events writer). Process-identity reads (/proc) and AEAD opens never
// run under it. See the tracker package for the rule.
//
// ingest never reads sockets (the listener does) and never surfaces stalls
// or runs recovery (the observer does).
package ingest
