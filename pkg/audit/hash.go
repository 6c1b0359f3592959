package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// chainDomain is the domain separation prefix of every chain link (docs/audit.md, "The file").
const chainDomain = "VARTA-AUDIT-v2"

// Hash is one link of the audit chain: a raw SHA-256 digest. Its text form is
// 64 lowercase hex digits.
type Hash [32]byte

// hashHexDigits is the width of a Hash's text form: the chain and
// prev_chain columns of a record.
const hashHexDigits = 2 * len(Hash{})

// ZeroHash is the genesis value: the previous link of the first record of a
// file or of a new v2 region.
var ZeroHash Hash

// String returns the lowercase hex form.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is the genesis value.
func (h Hash) IsZero() bool { return h == ZeroHash }

// MarshalText implements encoding.TextMarshaler (lowercase hex).
func (h Hash) MarshalText() ([]byte, error) {
	b := make([]byte, hashHexDigits)
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
	if len(s) != hashHexDigits {
		return h, fmt.Errorf("parse chain hash: want 64 hex digits, got %d characters", len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("parse chain hash: %w", err)
	}
	return h, nil
}

// decodeLowerHex decodes exactly 64 lowercase hex digits.
func decodeLowerHex(b []byte, h *Hash) bool {
	if len(b) != hashHexDigits {
		return false
	}
	var bad byte
	for i := range h {
		hi, lo := hexVal[b[2*i]], hexVal[b[2*i+1]]
		bad |= hi | lo
		h[i] = hi<<4 | lo&0x0f
	}
	return bad&0xf0 == 0
}

// hexVal maps '0'…'9' and 'a'…'f' to their value and every other byte to
// 0xff.
var hexVal = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c-'a') + 10
	}
	return t
}()

// appendHex appends the lowercase hex form of h.
func appendHex(dst []byte, h Hash) []byte {
	const digits = "0123456789abcdef"
	for _, b := range h {
		dst = append(dst, digits[b>>4], digits[b&0x0f])
	}
	return dst
}

// ChainHash computes one link of the chain (docs/audit.md, "The file"):
//
//	SHA-256("VARTA-AUDIT-v2" ‖ 0x00 ‖ kind ‖ 0x00 ‖ prev(32 raw bytes) ‖ 0x00 ‖ body)
//
// body is the line from the start of seq up to, not including, the TAB
// before the chain column.
func ChainHash(prev Hash, kind Kind, body []byte) Hash {
	var buf [512]byte // a record's hash input fits: no heap buffer per link
	return sha256.Sum256(appendChainInput(buf[:0], prev, kind.bytes(), body))
}

// chainer computes links in one reusable buffer, so that a verification
// loop does not allocate per record.
type chainer struct {
	buf []byte
}

func (c *chainer) link(prev Hash, kind, body []byte) Hash {
	c.buf = appendChainInput(c.buf[:0], prev, kind, body)
	return sha256.Sum256(c.buf)
}

// appendChainInput appends the bytes one link hashes.
func appendChainInput(dst []byte, prev Hash, kind, body []byte) []byte {
	dst = append(dst, chainDomain...)
	dst = append(dst, 0)
	dst = append(dst, kind...)
	dst = append(dst, 0)
	dst = append(dst, prev[:]...)
	dst = append(dst, 0)
	return append(dst, body...)
}
