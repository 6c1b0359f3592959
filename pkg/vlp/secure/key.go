package secure

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/varta-go/varta/pkg/secretfile"
)

// KeySize is the size of every key: pre-shared keys, the master key and
// derived agent keys.
const KeySize = 32

// keyHexLen is the length of a key in a key file: 64 hex digits.
const keyHexLen = 2 * KeySize

// Key is a 256-bit ChaCha20-Poly1305 or HKDF key. Its String and GoString
// methods never print the key material.
type Key [KeySize]byte

// String returns a placeholder so that keys never end up in logs.
func (Key) String() string { return "secure.Key(redacted)" }

// GoString returns the same placeholder for %#v.
func (Key) GoString() string { return "secure.Key(redacted)" }

// Key-content problems; compare with errors.Is. Parse errors are *KeyError
// values wrapping one of these.
var (
	ErrNoKey       = errors.New("no key")
	ErrKeyLength   = errors.New("wrong key length")
	ErrKeyNotHex   = errors.New("non-hex character in key")
	ErrTooManyKeys = errors.New("more than one key")
)

// KeyError describes what is wrong with the content of a key file. It
// never contains key material.
type KeyError struct {
	// Line is the 1-based line of the offending key in an accepted-keys
	// file; 0 for single-key content.
	Line int
	// Problem is ErrNoKey, ErrKeyLength, ErrKeyNotHex or ErrTooManyKeys.
	Problem error
	// Length is the number of characters found (ErrKeyLength).
	Length int
	// Pos is the 1-based position of the offending character within the
	// key, and Char the character (ErrKeyNotHex).
	Pos  int
	Char rune
	// Count is the number of keys found (ErrTooManyKeys).
	Count int
}

func (e *KeyError) Error() string {
	var msg string
	switch e.Problem {
	case ErrNoKey:
		msg = fmt.Sprintf("no key found (want %d hex digits)", keyHexLen)
	case ErrKeyLength:
		msg = fmt.Sprintf("key is %d characters long, want exactly %d hex digits", e.Length, keyHexLen)
	case ErrKeyNotHex:
		msg = fmt.Sprintf("non-hex character %q at position %d of the key", e.Char, e.Pos)
	case ErrTooManyKeys:
		if e.Line > 0 {
			msg = fmt.Sprintf("found %d keys on one line, put one key per line", e.Count)
		} else {
			msg = fmt.Sprintf("found %d keys, exactly one is allowed here", e.Count)
		}
	default:
		msg = fmt.Sprint(e.Problem)
	}
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, msg)
	}
	return msg
}

// Unwrap returns the problem sentinel.
func (e *KeyError) Unwrap() error { return e.Problem }

// ParseKey parses content holding exactly one key: 64 hex digits in either
// case, surrounding white space ignored. It is the format of --key-file and
// --master-key-file.
func ParseKey(data []byte) (Key, error) {
	s := bytes.TrimSpace(data)
	if len(s) == 0 {
		return Key{}, &KeyError{Problem: ErrNoKey}
	}
	if n := countKeys(s); n > 1 {
		return Key{}, &KeyError{Problem: ErrTooManyKeys, Count: n}
	}
	return parseToken(s, 0)
}

// ParseAcceptedKeys parses the --accepted-key-file format: one or more
// keys, one per line; blank lines and lines starting with '#' are skipped.
// Keys are returned in file order.
func ParseAcceptedKeys(data []byte) ([]Key, error) {
	var keys []Key
	for lineNo := 1; len(data) > 0; lineNo++ {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		s := bytes.TrimSpace(line)
		if len(s) == 0 || s[0] == '#' {
			continue
		}
		if n := countKeys(s); n > 1 {
			return nil, &KeyError{Line: lineNo, Problem: ErrTooManyKeys, Count: n}
		}
		k, err := parseToken(s, lineNo)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, &KeyError{Problem: ErrNoKey}
	}
	return keys, nil
}

// ParseKeyFile reads a single-key file through the secret-file rules and
// parses it with ParseKey.
func ParseKeyFile(path string) (Key, error) {
	data, err := secretfile.Read(path)
	if err != nil {
		return Key{}, fmt.Errorf("key file: %w", err)
	}
	defer clear(data)
	k, err := ParseKey(data)
	if err != nil {
		return Key{}, fmt.Errorf("key file %q: %w", path, err)
	}
	return k, nil
}

// ParseAcceptedKeysFile reads an accepted-keys file through the secret-file
// rules and parses it with ParseAcceptedKeys.
func ParseAcceptedKeysFile(path string) ([]Key, error) {
	data, err := secretfile.Read(path)
	if err != nil {
		return nil, fmt.Errorf("accepted key file: %w", err)
	}
	defer clear(data)
	keys, err := ParseAcceptedKeys(data)
	if err != nil {
		return nil, fmt.Errorf("accepted key file %q: %w", path, err)
	}
	return keys, nil
}

// countKeys returns how many white-space separated fields of s are valid
// keys; more than one means several keys where one is expected.
func countKeys(s []byte) int {
	n := 0
	for _, f := range bytes.Fields(s) {
		if _, err := parseToken(f, 0); err == nil {
			n++
		}
	}
	return n
}

// parseToken parses one trimmed key. A non-hex character is reported
// before a wrong length: "0x" prefixes and stray characters are the more
// useful diagnosis.
func parseToken(s []byte, line int) (Key, error) {
	for i := 0; i < len(s); {
		c := s[i]
		if isHex(c) {
			i++
			continue
		}
		r, _ := utf8.DecodeRune(s[i:])
		return Key{}, &KeyError{Line: line, Problem: ErrKeyNotHex, Pos: utf8.RuneCount(s[:i]) + 1, Char: r}
	}
	if len(s) != keyHexLen {
		return Key{}, &KeyError{Line: line, Problem: ErrKeyLength, Length: len(s)}
	}
	var k Key
	if _, err := hex.Decode(k[:], s); err != nil {
		// Unreachable: every character was checked above.
		return Key{}, &KeyError{Line: line, Problem: ErrKeyNotHex, Pos: 1, Char: rune(s[0])}
	}
	return k, nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
