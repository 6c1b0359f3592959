// Package identity names a kernel-attested agent the way an operator does:
// its uid, comm, executable, systemd unit and container id, read from /proc
// once per tracked generation (docs/services.md, "Identity").
//
// Nothing here is on the per-beat path: the observer resolves a new agent's
// identity off the receive path and publishes the immutable *Info it gets.
// A field that cannot be read is "-" (Unknown) and counted in Counters, so a
// slow, vanished or unprivileged read never fails the caller. comm is set by
// the process itself (prctl) and is informative only; the unit and
// container come from the cgroup v2 path, which the process cannot choose
// without privileges.
//
// The package also owns the rules that decide whether a field may be put
// into a recovery argument (SafeName, ValidUnitName): a value that is "-",
// starts with '-', holds a '/' or a control byte, or (for a unit) breaks
// the systemd unit-name grammar is never handed to a program.
package identity
