package snooze

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on what an operator may write.
const (
	// MaxNameBytes bounds a service name in a target.
	MaxNameBytes = 128
	// MaxReasonBytes bounds a reason.
	MaxReasonBytes = 256
	// MaxDuration bounds a snooze that is not forever.
	MaxDuration = 366 * 24 * time.Hour
	// MaxEntries bounds the number of snoozes held at once.
	MaxEntries = 1024
)

// All is the target that matches every agent.
const All = "all"

// Forever is the duration spelling of a snooze without an end.
const Forever = "forever"

const pidPrefix = "pid:"

// Errors of the validation functions; the returned errors wrap them and
// name the input and the rule.
var (
	ErrBadTarget   = errors.New("bad snooze target")
	ErrBadDuration = errors.New("bad snooze duration")
	ErrBadReason   = errors.New("bad reason")
	ErrTooMany     = errors.New("too many snoozes")
)

// Target is a parsed snooze target.
type Target struct {
	// Pid is set for "pid:N".
	Pid uint32
	// Service is set for a service name.
	Service string
	// All is set for "all".
	All bool
}

// String is the canonical spelling: the service, pid:N or all.
func (t Target) String() string {
	switch {
	case t.All:
		return All
	case t.Pid != 0:
		return pidPrefix + strconv.FormatUint(uint64(t.Pid), 10)
	}
	return t.Service
}

// ParseTarget parses a service name, "pid:N" (N a decimal pid ≥ 1) or
// "all". A service name is 1 to 128 bytes of UTF-8 without control or
// space characters at either end, without control characters anywhere, not
// "-" (the name of an unknown service) and not starting with "-".
func ParseTarget(s string) (Target, error) {
	switch {
	case s == All:
		return Target{All: true}, nil
	case strings.HasPrefix(s, pidPrefix):
		d := s[len(pidPrefix):]
		v, err := strconv.ParseUint(d, 10, 32)
		if err != nil || v == 0 || d[0] == '0' || d[0] == '+' {
			return Target{}, fmt.Errorf("%w %q: pid:N needs a decimal pid >= 1 without sign or leading zero", ErrBadTarget, s)
		}
		return Target{Pid: uint32(v)}, nil
	}
	if err := checkName(s); err != nil {
		return Target{}, err
	}
	return Target{Service: s}, nil
}

func checkName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty (give a service name, pid:N or all)", ErrBadTarget)
	case len(s) > MaxNameBytes:
		return fmt.Errorf("%w %.40q...: longer than %d bytes", ErrBadTarget, s, MaxNameBytes)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w %q: not valid UTF-8", ErrBadTarget, s)
	case s[0] == '-':
		return fmt.Errorf("%w %q: a service name does not start with \"-\"", ErrBadTarget, s)
	}
	if hasControl(s) {
		return fmt.Errorf("%w %q: contains a control character", ErrBadTarget, s)
	}
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	if unicode.IsSpace(first) || unicode.IsSpace(last) {
		return fmt.Errorf("%w %q: starts or ends with a space", ErrBadTarget, s)
	}
	return nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return true
		}
	}
	return false
}

// CheckReason validates a reason: at most 256 bytes of UTF-8 without
// control characters (TAB, CR and LF included). required refuses an
// empty reason.
func CheckReason(s string, required bool) error {
	switch {
	case s == "" && required:
		return fmt.Errorf("%w: empty (say why, e.g. --reason \"deploy 4711\")", ErrBadReason)
	case len(s) > MaxReasonBytes:
		return fmt.Errorf("%w: longer than %d bytes", ErrBadReason, MaxReasonBytes)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w %q: not valid UTF-8", ErrBadReason, s)
	case hasControl(s):
		return fmt.Errorf("%w %q: contains a control character", ErrBadReason, s)
	}
	return nil
}

// ParseDuration parses --for: "forever", or a Go duration ("90s", "30m",
// "2h45m") above zero and at most 366 days. forever is true for "forever".
func ParseDuration(s string) (d time.Duration, forever bool, err error) {
	if s == Forever {
		return 0, true, nil
	}
	d, err = time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, false, fmt.Errorf("%w %q: want a duration such as 90s, 30m or 2h, or forever", ErrBadDuration, s)
	case d <= 0:
		return 0, false, fmt.Errorf("%w %q: must be positive", ErrBadDuration, s)
	case d > MaxDuration:
		return 0, false, fmt.Errorf("%w %q: at most %s (366 days); say forever for no end", ErrBadDuration, s, MaxDuration)
	}
	return d, false, nil
}
