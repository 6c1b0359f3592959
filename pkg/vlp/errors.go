package vlp

import "strconv"

// DecodeError is implemented by every error Decode returns for a 32-byte
// input. Error() is the text form used in the events file and logs (the
// form the Rust daemon prints, numbers in decimal); Label() is the value of
// the "kind" label of varta_decode_errors_total.
type DecodeError interface {
	error
	Label() string
	// Kind is a small integer identifying the error class (see the Kind*
	// constants), convenient for indexing counters without allocation.
	Kind() Kind
}

// Kind enumerates the eight decode error classes.
type Kind uint8

// Decode error classes in normative order.
const (
	KindBadMagic Kind = iota
	KindBadVersion
	KindBadCrc
	KindBadStatus
	KindStallOnWire
	KindBadPid
	KindBadTimestamp
	KindBadNonce
	NumKinds
)

var kindLabels = [NumKinds]string{
	"bad_magic", "bad_version", "bad_crc", "bad_status",
	"stall_on_wire", "bad_pid", "bad_timestamp", "bad_nonce",
}

// Label returns the metric label value of k.
func (k Kind) Label() string {
	if k < NumKinds {
		return kindLabels[k]
	}
	return "unknown"
}

// Labels returns the eight metric label values in normative order.
func Labels() []string { return append([]string(nil), kindLabels[:]...) }

// BadMagicError: bytes 0..2 are not "VA".
type BadMagicError struct{}

func (*BadMagicError) Error() string { return "BadMagic" }
func (*BadMagicError) Label() string { return KindBadMagic.Label() }
func (*BadMagicError) Kind() Kind    { return KindBadMagic }

// BadVersionError: byte 2 is not 0x02.
type BadVersionError struct{}

func (*BadVersionError) Error() string { return "BadVersion" }
func (*BadVersionError) Label() string { return KindBadVersion.Label() }
func (*BadVersionError) Kind() Kind    { return KindBadVersion }

// StallOnWireError: status byte 3 (Stall) is observer-only.
type StallOnWireError struct{}

func (*StallOnWireError) Error() string { return "StallOnWire" }
func (*StallOnWireError) Label() string { return KindStallOnWire.Label() }
func (*StallOnWireError) Kind() Kind    { return KindStallOnWire }

// Shared instances: errors without fields need no allocation.
var (
	errBadMagic    = &BadMagicError{}
	errBadVersion  = &BadVersionError{}
	errStallOnWire = &StallOnWireError{}
)

// Sentinels for errors.Is on the field-less errors.
var (
	ErrBadMagic    error = errBadMagic
	ErrBadVersion  error = errBadVersion
	ErrStallOnWire error = errStallOnWire
)

// BadCrcError: the computed CRC (Expected) differs from the stored one
// (Actual).
type BadCrcError struct{ Expected, Actual uint32 }

func (e *BadCrcError) Error() string {
	return "BadCrc { expected: " + strconv.FormatUint(uint64(e.Expected), 10) +
		", actual: " + strconv.FormatUint(uint64(e.Actual), 10) + " }"
}
func (*BadCrcError) Label() string { return KindBadCrc.Label() }
func (*BadCrcError) Kind() Kind    { return KindBadCrc }

// BadStatusError: status byte above 3.
type BadStatusError struct{ Status uint8 }

func (e *BadStatusError) Error() string {
	return "BadStatus(" + strconv.FormatUint(uint64(e.Status), 10) + ")"
}
func (*BadStatusError) Label() string { return KindBadStatus.Label() }
func (*BadStatusError) Kind() Kind    { return KindBadStatus }

// BadPidError: pid 0 or 1.
type BadPidError struct{ Pid uint32 }

func (e *BadPidError) Error() string {
	return "BadPid(" + strconv.FormatUint(uint64(e.Pid), 10) + ")"
}
func (*BadPidError) Label() string { return KindBadPid.Label() }
func (*BadPidError) Kind() Kind    { return KindBadPid }

// BadTimestampError: the reserved timestamp 0xFFFF_FFFF_FFFF_FFFF.
type BadTimestampError struct{ Timestamp uint64 }

func (e *BadTimestampError) Error() string {
	return "BadTimestamp(" + strconv.FormatUint(e.Timestamp, 10) + ")"
}
func (*BadTimestampError) Label() string { return KindBadTimestamp.Label() }
func (*BadTimestampError) Kind() Kind    { return KindBadTimestamp }

// BadNonceError: NonceTerminal with a status other than Critical.
type BadNonceError struct {
	Nonce  uint64
	Status Status
}

func (e *BadNonceError) Error() string {
	st := "Ok"
	switch e.Status {
	case StatusDegraded:
		st = "Degraded"
	case StatusCritical:
		st = "Critical"
	case StatusStall:
		st = "Stall"
	}
	return "BadNonce { nonce: " + strconv.FormatUint(e.Nonce, 10) + ", status: " + st + " }"
}
func (*BadNonceError) Label() string { return KindBadNonce.Label() }
func (*BadNonceError) Kind() Kind    { return KindBadNonce }

// SizeError: the input is not exactly FrameSize bytes. It is not one of the
// eight decode errors: listeners count it as a truncated datagram.
type SizeError struct{ Len int }

func (e *SizeError) Error() string {
	return "vlp: frame is " + strconv.Itoa(e.Len) + " bytes, want exactly 32"
}
