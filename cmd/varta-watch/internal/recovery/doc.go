// Package recovery owns the recovery runner of varta-watch: the safety
// gates that decide whether a surfaced stall may run the operator's
// recovery program, the debounce ledger, the table of outstanding
// children, their output capture, timeouts and reaping.
//
// It executes the configured program directly (fork + execve, never a
// shell), substitutes "{pid}" in the arguments, builds the child's
// environment from scratch and looks the program up in the child's PATH.
// Every decision is counted in stats.Counters and handed to an Auditor.
//
// The package must not block the observer: children are started and reaped
// without waiting, pipes are read without blocking, and a burst of stalls
// is spread over several ticks. It must not read the daemon's arguments or
// environment (the caller passes them in Options), must not know about
// sockets, listeners or the tracker (it sees a Stall and a Verifier), and
// must not write the audit file itself (the Auditor does). A Runner is
// driven by exactly one goroutine, the observer's control loop; it starts
// no goroutines of its own.
package recovery
