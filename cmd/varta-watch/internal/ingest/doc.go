// Package ingest owns the per-datagram pipeline of the observer: size,
// kernel credentials and the uid/gid allow-lists, the global token bucket,
// decoding, the sender-identity check (frame pid = kernel pid), the pid_max
// check for unauthenticated transports, and handing the frame to the
// tracker. It turns every refusal into a counter and, where the events file
// has a line for it, an event.
//
// ingest never reads sockets (the listener does) and never surfaces stalls
// or runs recovery (the observer does).
package ingest
