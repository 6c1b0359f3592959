// Package events owns the observer's events file (docs/events-file.md): one
// TAB-separated, LF-terminated line per beat, stall, decode error, I/O error,
// truncated control message, identity mismatch and eviction.
//
// Emit is called from the receive path and never blocks and never allocates
// for beat events: events go into a bounded in-memory queue that a single
// background goroutine formats, buffers, writes, rotates and fdatasyncs.
// When the disk cannot keep up, beat lines are dropped and counted
// (stats.Counters.ExportDropped) while stall, mismatch, eviction, decode, io
// and ctrunc lines keep a reserved part of the queue, so they are never
// dropped in favour of beats. I/O errors are counted
// (stats.Counters.ExportIOErrors), logged at a limited rate and never fatal;
// a write that fails half way through a line is cut back so that no later
// line is glued onto a torn one.
//
// The package must not decide what an event means, read flags, the
// environment or signals (the caller calls Reopen on SIGHUP), or slow down
// its caller: liveness tracking comes first, the file second.
package events
