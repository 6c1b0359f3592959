package agent

import (
	"errors"
	"fmt"
	"syscall"
)

// Outcome says what became of one beat.
type Outcome uint8

// Outcomes. The zero Outcome is not a valid result.
const (
	// Sent: the kernel accepted the datagram.
	Sent Outcome = iota + 1
	// Dropped: the datagram did not leave the process for a reason that is
	// normal in operation (the observer restarting, a full queue). The next
	// beat reuses the nonce.
	Dropped
	// Failed: the beat was not sent because of an error that is not a drop
	// (a refused Stall status, a closed Agent, an unexpected errno).
	Failed
)

// String returns "sent", "dropped" or "failed".
func (o Outcome) String() string {
	switch o {
	case Sent:
		return "sent"
	case Dropped:
		return "dropped"
	case Failed:
		return "failed"
	}
	return "unknown"
}

// DropReason classifies a dropped beat.
type DropReason uint8

// Drop reasons. NoDrop is the reason of results that are not drops.
const (
	NoDrop DropReason = iota
	// KernelQueueFull: EAGAIN, EWOULDBLOCK or ENOBUFS.
	KernelQueueFull
	// NoObserver: ECONNREFUSED or ENOENT (no observer bound to the address).
	NoObserver
	// PeerGone: ECONNRESET, ENOTCONN or EPIPE (the observer went away).
	PeerGone
	// StorageFull: ENOSPC.
	StorageFull
	// NumDropReasons is the number of drop reasons plus one (for NoDrop);
	// it sizes Stats.Dropped.
	NumDropReasons
)

var dropReasonNames = [NumDropReasons]string{
	"None", "KernelQueueFull", "NoObserver", "PeerGone", "StorageFull",
}

// String returns the name of r that docs/agent.md uses ("KernelQueueFull", ...).
func (r DropReason) String() string {
	if r < NumDropReasons {
		return dropReasonNames[r]
	}
	return "Unknown"
}

// Sentinel errors. Results and errors returned by this package wrap them;
// compare with errors.Is.
var (
	// ErrStallRefused: Beat was called with vlp.StatusStall, which only the
	// observer may synthesize. Nothing was sent.
	ErrStallRefused = errors.New("agent: status Stall is observer-only and is never sent")
	// ErrBadStatus: Beat was called with a status byte outside the defined
	// range. Nothing was sent.
	ErrBadStatus = errors.New("agent: status is not Ok, Degraded or Critical")
	// ErrClosed: the Agent was closed.
	ErrClosed = errors.New("agent: closed")
	// ErrNoObserver: connecting found no observer at the address (the socket
	// path does not exist, or nothing is bound to it).
	ErrNoObserver = errors.New("no observer listening")
	// ErrInvalidOptions: Options do not describe exactly one transport.
	ErrInvalidOptions = errors.New("agent: invalid options")
)

// Result is the outcome of one Beat or Terminal call. It is a small value:
// producing it never allocates.
type Result struct {
	// Outcome is Sent, Dropped or Failed.
	Outcome Outcome
	// Reason is set when Outcome is Dropped.
	Reason DropReason
	// Errno is the send error reported by the kernel, if any (zero when
	// Sent, and for failures that did not come from the kernel).
	Errno syscall.Errno
	// Nonce is the nonce the frame carried (NonceTerminal for a terminal
	// frame). For a drop it is the nonce the next beat will reuse.
	Nonce uint64
	// err is one of the package's sentinel errors, for failures that did
	// not come from the kernel.
	err error
}

// Sent reports whether the kernel accepted the beat.
func (r Result) Sent() bool { return r.Outcome == Sent }

// Err returns nil for a sent beat and otherwise an error describing the
// drop or failure. Errno values and sentinel errors can be matched with
// errors.Is. Err allocates; it is meant for reporting, not the hot path.
func (r Result) Err() error {
	switch r.Outcome {
	case Sent:
		return nil
	case Dropped:
		return &DropError{Reason: r.Reason, Errno: r.Errno}
	}
	if r.err != nil {
		return r.err
	}
	if r.Errno != 0 {
		return fmt.Errorf("agent: send: %w", r.Errno)
	}
	return errors.New("agent: beat failed")
}

// String describes r in one line, e.g. "sent nonce 7" or
// "dropped: NoObserver (connection refused)".
func (r Result) String() string {
	switch r.Outcome {
	case Sent:
		return fmt.Sprintf("sent nonce %d", r.Nonce)
	case Dropped:
		return "dropped: " + r.Err().(*DropError).Error()
	case Failed:
		return "failed: " + r.Err().Error()
	}
	return "invalid result"
}

// DropError is the error form of a dropped beat.
type DropError struct {
	Reason DropReason
	Errno  syscall.Errno
}

func (e *DropError) Error() string {
	if e.Errno == 0 {
		return e.Reason.String()
	}
	return e.Reason.String() + " (" + e.Errno.Error() + ")"
}

// Unwrap returns the errno, so errors.Is(err, syscall.ECONNREFUSED) works.
func (e *DropError) Unwrap() error {
	if e.Errno == 0 {
		return nil
	}
	return e.Errno
}

// Classify maps an error from sending a datagram to the Result an Agent
// reports for it: a drop with its reason for the errnos listed in
// docs/agent.md ("Integrating a Go service"), Failed with the errno for every
// other errno. It never allocates.
// Tools that build frames themselves (load generators) use it to count drops
// the way the Agent does.
func Classify(err error) Result {
	if err == nil {
		return Result{Outcome: Sent}
	}
	return classify(err)
}

// classify maps a send error to a Result. It never allocates.
func classify(err error) Result {
	errno, ok := err.(syscall.Errno)
	if !ok {
		return Result{Outcome: Failed, err: errSendUnknown}
	}
	return classifyErrno(errno)
}

// classifyErrno maps a send errno to a Result.
func classifyErrno(errno syscall.Errno) Result {
	r := Result{Outcome: Dropped, Errno: errno}
	switch {
	case errno == syscall.EAGAIN || errno == syscall.EWOULDBLOCK || errno == syscall.ENOBUFS:
		r.Reason = KernelQueueFull
	case errno == syscall.ECONNREFUSED || errno == syscall.ENOENT:
		r.Reason = NoObserver
	case errno == syscall.ECONNRESET || errno == syscall.ENOTCONN || errno == syscall.EPIPE:
		r.Reason = PeerGone
	case errno == syscall.ENOSPC:
		r.Reason = StorageFull
	default:
		r.Outcome = Failed
	}
	return r
}

var errSendUnknown = errors.New("agent: send failed with a non-errno error")
