// Package exitcode holds the process exit codes shared by varta-watch,
// varta-beat and varta-audit, and the one function that turns a command's
// error into its exit code and stderr message. It has no dependencies
// beyond the standard library.
package exitcode

// Exit codes.
const (
	// OK: clean exit, --help, audit intact.
	OK = 0
	// Failure: runtime failure (bind, file, key, device), audit verification
	// failed, beat failed.
	Failure = 1
	// Usage: configuration or usage error, or (varta-audit) an I/O error.
	Usage = 2
	// Dropped: varta-beat once: the beat was dropped (reason on stderr).
	Dropped = 3
)
