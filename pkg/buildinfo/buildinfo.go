package buildinfo

import "runtime"

// Version of the suite.
var Version = "0.2.0-dev"

// GoVersion is the Go toolchain that built the binary.
func GoVersion() string { return runtime.Version() }
