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
