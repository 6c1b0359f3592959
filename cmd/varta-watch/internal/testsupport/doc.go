// Package testsupport is the harness shared by the end-to-end tests
// (internal/e2e) and the fault-injection suite (internal/faults): it
// builds the real binaries once per test binary, starts varta-watch with
// its socket and events file in a short private directory, waits for
// conditions by polling (Eventually), scrapes the metrics endpoint and
// reads the events file.
//
// It is for tests only: its functions take a testing.TB and fail the test
// on errors. The daemon and the other programs must never import it.
package testsupport
