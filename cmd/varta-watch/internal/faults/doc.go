// Package faults holds the fault-injection suite of varta-watch (make
// faults): the built binaries attacked from outside as an adversary or an
// unlucky machine would — hostile traffic on loopback and Unix sockets, a
// full file system, signals — each case bounded in time, reporting its
// figures with t.Logf and shortened under -short. docs/reliability.md
// lists every case, its command, what it measured and what is promised.
//
// The package has no non-test code; TestMain builds varta-watch,
// varta-beat and varta-audit once into a temporary directory, and the
// harness (starting the daemon, polling, scraping, reading the events
// file) is internal/testsupport, shared with the end-to-end tests.
package faults
