// Command varta-beat is the reference varta agent: it sends VLP beats
// (run, once, terminal), wraps a command and beats on its behalf (exec),
// generates load for benchmarks (load) and writes keys (keygen). main
// only runs the App that internal/app builds; see man/varta-beat.1 and
// docs/agent.md.
package main
