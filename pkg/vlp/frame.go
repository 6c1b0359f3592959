package vlp

import (
	"encoding/binary"
	"hash/crc32"
)

// FrameSize is the exact size of a VLP v0.2 frame on the wire.
const FrameSize = 32

// Wire constants.
const (
	Magic0  byte = 0x56 // 'V'
	Magic1  byte = 0x41 // 'A'
	Version byte = 0x02

	// NonceTerminal paired with StatusCritical marks a terminal (dying-gasp)
	// frame.
	NonceTerminal uint64 = 0xFFFF_FFFF_FFFF_FFFF
	// NonceWrapFrom is the last regular nonce before the sender wraps to 0.
	NonceWrapFrom uint64 = 0xFFFF_FFFF_FFFF_FFFE
	// TimestampInvalid is the reserved timestamp no frame may carry.
	TimestampInvalid uint64 = 0xFFFF_FFFF_FFFF_FFFF
)

// Status is the health an agent reports.
type Status uint8

// Status values. StatusStall is synthesized by the observer and never
// appears on the wire.
const (
	StatusOk       Status = 0
	StatusDegraded Status = 1
	StatusCritical Status = 2
	StatusStall    Status = 3
)

// String returns the lower-case name used in the events file.
func (s Status) String() string {
	switch s {
	case StatusOk:
		return "ok"
	case StatusDegraded:
		return "degraded"
	case StatusCritical:
		return "critical"
	case StatusStall:
		return "stall"
	}
	return "unknown"
}

// ParseStatus maps "ok", "degraded", "critical" to a Status. Stall is not
// accepted: it is never sent by an agent.
func ParseStatus(s string) (Status, bool) {
	switch s {
	case "ok":
		return StatusOk, true
	case "degraded":
		return StatusDegraded, true
	case "critical":
		return StatusCritical, true
	}
	return 0, false
}

// Frame is a decoded VLP v0.2 frame.
type Frame struct {
	Status    Status
	Pid       uint32
	Timestamp uint64
	Nonce     uint64
	Payload   uint32
}

// IsTerminal reports whether f is a terminal (dying-gasp) frame.
func (f *Frame) IsTerminal() bool {
	return f.Status == StatusCritical && f.Nonce == NonceTerminal
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum returns the CRC-32C (Castagnoli) of b.
func Checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// Encode writes f into dst and returns it. It does not validate f; use
// Validate first when f comes from an untrusted source.
func (f *Frame) Encode(dst *[FrameSize]byte) {
	dst[0] = Magic0
	dst[1] = Magic1
	dst[2] = Version
	dst[3] = byte(f.Status)
	binary.LittleEndian.PutUint32(dst[4:8], f.Pid)
	binary.LittleEndian.PutUint64(dst[8:16], f.Timestamp)
	binary.LittleEndian.PutUint64(dst[16:24], f.Nonce)
	binary.LittleEndian.PutUint32(dst[24:28], f.Payload)
	binary.LittleEndian.PutUint32(dst[28:32], Checksum(dst[:28]))
}

// Marshal returns the wire form of f.
func (f *Frame) Marshal() [FrameSize]byte {
	var b [FrameSize]byte
	f.Encode(&b)
	return b
}

// Decode parses a 32-byte frame following the normative check order of
// VLP v0.2: magic, version, CRC, status, stall-on-wire, pid, timestamp,
// nonce. The first failing check wins. A slice that is not exactly 32 bytes
// yields *SizeError. Decode never allocates on success and never panics.
func Decode(b []byte, f *Frame) error {
	if len(b) != FrameSize {
		return &SizeError{Len: len(b)}
	}
	if b[0] != Magic0 || b[1] != Magic1 {
		return errBadMagic
	}
	if b[2] != Version {
		return errBadVersion
	}
	stored := binary.LittleEndian.Uint32(b[28:32])
	computed := Checksum(b[:28])
	if stored != computed {
		return &BadCrcError{Expected: computed, Actual: stored}
	}
	status := b[3]
	if status > byte(StatusStall) {
		return &BadStatusError{Status: status}
	}
	if status == byte(StatusStall) {
		return errStallOnWire
	}
	pid := binary.LittleEndian.Uint32(b[4:8])
	if pid <= 1 {
		return &BadPidError{Pid: pid}
	}
	ts := binary.LittleEndian.Uint64(b[8:16])
	if ts == TimestampInvalid {
		return &BadTimestampError{Timestamp: ts}
	}
	nonce := binary.LittleEndian.Uint64(b[16:24])
	if nonce == NonceTerminal && Status(status) != StatusCritical {
		return &BadNonceError{Nonce: nonce, Status: Status(status)}
	}
	f.Status = Status(status)
	f.Pid = pid
	f.Timestamp = ts
	f.Nonce = nonce
	f.Payload = binary.LittleEndian.Uint32(b[24:28])
	return nil
}

// Validate reports the first field error Decode would report for the frame
// f encodes to. Encoders use it to refuse frames the observer would reject.
func (f *Frame) Validate() error {
	var b [FrameSize]byte
	f.Encode(&b)
	var g Frame
	return Decode(b[:], &g)
}
