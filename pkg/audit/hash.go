package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
)

// chainDomain is the domain separation prefix of every chain link (audit.md §2).
const chainDomain = "VARTA-AUDIT-v2"

// Hash is one link of the audit chain: a raw SHA-256 digest. Its text form is
// 64 lowercase hex digits.
type Hash [32]byte

// ZeroHash is the genesis value: the previous link of the first record of a
// file or of a new v2 region.
var ZeroHash Hash

// String returns the lowercase hex form.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is the genesis value.
func (h Hash) IsZero() bool { return h == ZeroHash }

// MarshalText implements encoding.TextMarshaler (lowercase hex).
func (h Hash) MarshalText() ([]byte, error) {
	b := make([]byte, 64)
	hex.Encode(b, h[:])
	return b, nil
}

// UnmarshalText implements encoding.TextUnmarshaler; see ParseHash.
func (h *Hash) UnmarshalText(b []byte) error {
	v, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// ParseHash parses 64 hex digits (either case, as an operator may paste
// them). The audit file itself only ever carries lowercase hex; the record
// parser enforces that.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 64 {
		return h, fmt.Errorf("parse chain hash: want 64 hex digits, got %d characters", len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("parse chain hash: %w", err)
	}
	return h, nil
}

// decodeLowerHex decodes exactly 64 lowercase hex digits.
func decodeLowerHex(b []byte, h *Hash) bool {
	if len(b) != 64 {
		return false
	}
	for i := 0; i < 32; i++ {
		hi, ok1 := lowerNibble(b[2*i])
		lo, ok2 := lowerNibble(b[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		h[i] = hi<<4 | lo
	}
	return true
}

func lowerNibble(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// appendHex appends the lowercase hex form of h.
func appendHex(dst []byte, h Hash) []byte {
	const digits = "0123456789abcdef"
	for _, b := range h {
		dst = append(dst, digits[b>>4], digits[b&0x0f])
	}
	return dst
}

// ChainHash computes one link of the chain (audit.md §2):
//
//	SHA-256("VARTA-AUDIT-v2" ‖ 0x00 ‖ kind ‖ 0x00 ‖ prev(32 raw bytes) ‖ 0x00 ‖ body)
//
// body is the line from the start of seq up to, not including, the TAB
// before the chain column.
func ChainHash(prev Hash, kind Kind, body []byte) Hash {
	var c chainer
	return c.link(prev, []byte(kind.String()), body)
}

// chainer computes links with one reusable digest, so that a verification
// loop does not allocate per record.
type chainer struct {
	d   hash.Hash
	out [32]byte
}

func (c *chainer) link(prev Hash, kind, body []byte) Hash {
	if c.d == nil {
		c.d = sha256.New()
	}
	var sep = [1]byte{0}
	c.d.Reset()
	c.d.Write([]byte(chainDomain))
	c.d.Write(sep[:])
	c.d.Write(kind)
	c.d.Write(sep[:])
	c.d.Write(prev[:])
	c.d.Write(sep[:])
	c.d.Write(body)
	var h Hash
	copy(h[:], c.d.Sum(c.out[:0]))
	return h
}
