// Package promtest runs a real Prometheus server (the binary of the Debian
// prometheus package) as a child process for end-to-end tests: it scrapes
// one target with a bearer-token file every second and answers instant
// queries over its HTTP API. It is for tests only; it owns the child's
// configuration, data directory and lifetime, and must never be imported
// by the daemon.
package promtest
