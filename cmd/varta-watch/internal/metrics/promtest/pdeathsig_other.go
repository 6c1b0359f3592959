//go:build !linux

package promtest

import "os/exec"

// setParentDeathSignal does nothing where the kernel has no parent-death
// signal; the test's cleanup stops the child.
func setParentDeathSignal(*exec.Cmd) {}
