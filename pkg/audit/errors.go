package audit

import "errors"

// Sentinel errors. Compare with errors.Is.
var (
	// ErrMalformed: a line is not a well-formed schema v2 record. Every
	// *ParseError matches it.
	ErrMalformed = errors.New("malformed audit record")
	// ErrColumnCount: a record has the wrong number of columns for its kind.
	ErrColumnCount = errors.New("wrong column count")
	// ErrUnknownKind: column 3 is not boot, spawn, complete or refused.
	ErrUnknownKind = errors.New("unknown record kind")
	// ErrBadField: a column is outside its domain.
	ErrBadField = errors.New("field out of domain")

	// ErrLocked: another process holds the audit file's lock (a running
	// varta-watch, or a second Open).
	ErrLocked = errors.New("audit file is locked by another process")
	// ErrSymlink: the last path component is a symbolic link.
	ErrSymlink = errors.New("audit file is a symbolic link")
	// ErrNotRegular: the path is not a regular file.
	ErrNotRegular = errors.New("audit file is not a regular file")
	// ErrNotOwner: the file is not owned by this process's effective uid.
	ErrNotOwner = errors.New("audit file is not owned by this user")
	// ErrHardLinks: the file has more than one hard link.
	ErrHardLinks = errors.New("audit file has more than one hard link")
	// ErrInvalidOptions: Options or RotateOptions are out of range.
	ErrInvalidOptions = errors.New("invalid audit options")
	// ErrTailNotClean: Rotate found no chained, complete last record to
	// continue from (torn or unparseable tail, or a log without chain).
	ErrTailNotClean = errors.New("audit file has no clean chained tail")
	// ErrNoRecords: the log holds no record (Head, Rotate).
	ErrNoRecords = errors.New("audit log holds no record")
	// ErrClosed: the Writer is closed.
	ErrClosed = errors.New("audit writer closed")
)
