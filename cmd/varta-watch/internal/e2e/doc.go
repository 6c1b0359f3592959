// Package e2e holds the end-to-end tests of varta-watch: they build the
// real binary, start it, send frames from real processes over the real
// socket and read its events file, metrics and audit log. The harness they
// share with the fault-injection suite is internal/testsupport.
//
// Under -short (make test-unit) the package builds nothing and runs
// nothing. Tests that start their own daemon in their own directory run
// in parallel; those that measure timing or depend on a quick restart say
// why they do not, in a "// Not parallel:" comment at their start
// (TestEveryTestSaysWhetherItIsParallel holds new tests to this). The
// package has no non-test code besides this comment.
package e2e
