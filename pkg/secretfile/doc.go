// Package secretfile owns the secret-file rules every varta program applies
// to key files, the metrics token and the recovery command file: the file is
// opened without following a symlink at the last path component, and the
// opened descriptor must be a regular file, owned by the effective uid of the
// process, with no group or other permission bits.
//
// The checks run on the opened descriptor (fstat), so there is no window
// between checking a path and reading it. Errors name the file and the rule
// it breaks and never contain file contents. The package reads files and
// replaces them atomically (WriteAtomic, for small state files the daemon
// owns); it does not parse them or change an existing file's mode or owner.
package secretfile
