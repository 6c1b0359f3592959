package vlp

import (
	"encoding/binary"
	"hash/crc32"
	"sync"
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

// Encode writes f into dst. It does not validate f; use Validate first
// when f comes from an untrusted source. Encode does not allocate when dst
// outlives the call (a sender's buffer); hash/crc32 reaches the hardware
// CRC through a function value, so escape analysis moves a dst declared in
// the caller to the heap. Marshal has no such cost.
func (f *Frame) Encode(dst *[FrameSize]byte) {
	f.fields(dst)
	binary.LittleEndian.PutUint32(dst[28:32], Checksum(dst[:28]))
}

// fields writes everything but the CRC.
func (f *Frame) fields(dst *[FrameSize]byte) {
	dst[0] = Magic0
	dst[1] = Magic1
	dst[2] = Version
	dst[3] = byte(f.Status)
	binary.LittleEndian.PutUint32(dst[4:8], f.Pid)
	binary.LittleEndian.PutUint64(dst[8:16], f.Timestamp)
	binary.LittleEndian.PutUint64(dst[16:24], f.Nonce)
	binary.LittleEndian.PutUint32(dst[24:28], f.Payload)
}

// crcScratch holds heap buffers the CRC is computed over on behalf of
// callers whose bytes live on the stack, so that those bytes do not escape.
var crcScratch = sync.Pool{New: func() any { return new([FrameSize - 4]byte) }}

// Marshal returns the wire form of f. It never allocates.
func (f *Frame) Marshal() [FrameSize]byte {
	var b [FrameSize]byte
	f.fields(&b)
	s := crcScratch.Get().(*[FrameSize - 4]byte)
	copy(s[:], b[:28])
	binary.LittleEndian.PutUint32(b[28:32], Checksum(s[:]))
	crcScratch.Put(s)
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
// f encodes to (the magic, version and CRC of an encoded frame are always
// right, so only the field checks remain, in the normative order). It
// never allocates on success.
func (f *Frame) Validate() error {
	switch {
	case f.Status > StatusStall:
		return &BadStatusError{Status: uint8(f.Status)}
	case f.Status == StatusStall:
		return errStallOnWire
	case f.Pid <= 1:
		return &BadPidError{Pid: f.Pid}
	case f.Timestamp == TimestampInvalid:
		return &BadTimestampError{Timestamp: f.Timestamp}
	case f.Nonce == NonceTerminal && f.Status != StatusCritical:
		return &BadNonceError{Nonce: f.Nonce, Status: f.Status}
	}
	return nil
}
