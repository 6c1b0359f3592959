package metrics

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/varta-go/varta/pkg/secretfile"
)

// TokenLen is the length of a metrics bearer token: 64 hex digits.
const TokenLen = 64

// ErrBadToken is returned (wrapped) when a token file passes the
// secret-file rules but does not hold exactly 64 hex digits.
var ErrBadToken = errors.New("must hold exactly 64 hex digits")

// LoadToken reads the metrics bearer token from path. The file must pass the
// secret-file rules (no symlink, regular file, owned by the observer's uid,
// no group or other permission bits) and hold exactly 64 hexadecimal digits,
// surrounding white space ignored. The token is the 64 characters as written
// (this is what Prometheus sends for authorization.credentials_file). Errors
// name the file and the rule it breaks; they never contain the token.
func LoadToken(path string) ([]byte, error) {
	raw, err := secretfile.Read(path)
	if err != nil {
		return nil, fmt.Errorf("metrics token file: %w", err) // names the file and the rule
	}
	defer clear(raw)
	tok := bytes.TrimSpace(raw)
	if len(tok) != TokenLen {
		return nil, fmt.Errorf("metrics token file %q: %w, found %d characters", path, ErrBadToken, len(tok))
	}
	for i, b := range tok {
		if !isHex(b) {
			return nil, fmt.Errorf("metrics token file %q: %w, character %d is not a hex digit", path, ErrBadToken, i+1)
		}
	}
	return bytes.Clone(tok), nil
}

func isHex(b byte) bool {
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
}
