// Package procfs reads the few facts the observer needs about a process
// from /proc: its PID-namespace inode, its start time (the "generation"
// that tells a recycled pid from the original process) and pid_max. It
// holds no state and never caches.
package procfs
