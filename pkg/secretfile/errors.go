package secretfile

import (
	"errors"
	"strconv"
)

// Sentinel errors for the rules a secret file can break; compare with
// errors.Is. Every error returned by Check and Read for a rule violation is
// an *Error whose Rule is one of these.
var (
	ErrSymlink    = errors.New("secret file is a symlink")
	ErrNotRegular = errors.New("secret file is not a regular file")
	ErrWrongOwner = errors.New("secret file has the wrong owner")
	ErrPermissive = errors.New("secret file grants group/other access")
	ErrTooLarge   = errors.New("secret file is too large")
)

// Error reports why a path is not usable as a secret file. Rule is one of
// the sentinels above, or nil when the file could not be opened or read at
// all; Err is the underlying system error, if any. Both are reachable with
// errors.Is and errors.As.
type Error struct {
	Path   string
	Rule   error
	Detail string // what is wrong, e.g. "mode 0640 grants group/other access (must be 0600 or stricter)"
	Err    error
}

func (e *Error) Error() string {
	return "secret file " + strconv.Quote(e.Path) + ": " + e.Detail
}

// Unwrap returns the rule and the system error, whichever are set.
func (e *Error) Unwrap() []error {
	errs := make([]error, 0, 2)
	if e.Rule != nil {
		errs = append(errs, e.Rule)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}
