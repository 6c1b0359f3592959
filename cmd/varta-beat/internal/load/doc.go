// Package load owns "varta-beat load", the load generator for benchmarks and
// soak tests of an observer. Over a Unix socket every agent is a real child
// process (a re-exec of varta-beat running RunChild), because the kernel
// reports the sender's pid with every datagram; over UDP one process sends
// for many agents with synthetic pids drawn from [2, pid_max).
//
// It does not parse flags, decide exit codes or judge the observer; it
// reports what was sent, what was dropped and what rate was achieved.
package load
