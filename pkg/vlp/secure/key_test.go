package secure_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/varta-go/varta/pkg/secretfile"
	"github.com/varta-go/varta/pkg/vlp/secure"
)

const (
	hexK1 = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	hexK2 = "FFEEDDCCBBAA99887766554433221100FFEEDDCCBBAA99887766554433221100"
	hexK3 = "0123456789abcdefABCDEF0123456789abcdefABCDEF0123456789abcdef0123"
)

func TestParseKey(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string // hex of the key, lower case
		problem error
		text    string
	}{
		{name: "lower case", in: hexK1, want: hexK1},
		{name: "upper case", in: hexK2, want: strings.ToLower(hexK2)},
		{name: "mixed case", in: hexK3, want: strings.ToLower(hexK3)},
		{name: "trailing newline", in: hexK1 + "\n", want: hexK1},
		{name: "surrounding white space and CRLF", in: " \t" + hexK1 + " \r\n\n", want: hexK1},
		{name: "empty", in: "", problem: secure.ErrNoKey, text: "no key found (want 64 hex digits)"},
		{name: "white space only", in: " \n\t\n", problem: secure.ErrNoKey, text: "no key found (want 64 hex digits)"},
		{name: "63 digits", in: hexK1[:63], problem: secure.ErrKeyLength, text: "key is 63 characters long, want exactly 64 hex digits"},
		{name: "65 digits", in: hexK1 + "0", problem: secure.ErrKeyLength, text: "key is 65 characters long, want exactly 64 hex digits"},
		{name: "two keys concatenated", in: hexK1 + hexK1, problem: secure.ErrKeyLength, text: "key is 128 characters long, want exactly 64 hex digits"},
		{name: "non-hex at 17", in: hexK1[:16] + "g" + hexK1[17:], problem: secure.ErrKeyNotHex, text: `non-hex character 'g' at position 17 of the key`},
		{name: "0x prefix", in: "0x" + hexK1, problem: secure.ErrKeyNotHex, text: `non-hex character 'x' at position 2 of the key`},
		{name: "non-ASCII character", in: "é" + hexK1[1:], problem: secure.ErrKeyNotHex, text: `non-hex character 'é' at position 1 of the key`},
		{name: "inner space", in: hexK1[:32] + " " + hexK1[32:], problem: secure.ErrKeyNotHex, text: `non-hex character ' ' at position 33 of the key`},
		{name: "two keys on two lines", in: hexK1 + "\n" + hexK2 + "\n", problem: secure.ErrTooManyKeys, text: "found 2 keys, exactly one is allowed here"},
		{name: "accepted-keys file given as key file", in: "# rotation\n" + hexK1 + "\n" + hexK2 + "\n" + hexK3, problem: secure.ErrTooManyKeys, text: "found 3 keys, exactly one is allowed here"},
		{name: "comment before a single key", in: "# primary\n" + hexK1, problem: secure.ErrKeyNotHex, text: `non-hex character '#' at position 1 of the key`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := secure.ParseKey([]byte(tt.in))
			if tt.problem == nil {
				if err != nil {
					t.Fatalf("ParseKey: %v", err)
				}
				if got := fmt.Sprintf("%x", k[:]); got != tt.want {
					t.Errorf("key = %s, want %s", got, tt.want)
				}
				return
			}
			if !errors.Is(err, tt.problem) {
				t.Fatalf("ParseKey = %v, want %v", err, tt.problem)
			}
			var ke *secure.KeyError
			if !errors.As(err, &ke) || ke.Line != 0 {
				t.Errorf("errors.As *KeyError = %+v, want Line 0", ke)
			}
			if err.Error() != tt.text {
				t.Errorf("error text\n got %q\nwant %q", err.Error(), tt.text)
			}
			if k != (secure.Key{}) {
				t.Error("key returned with an error")
			}
		})
	}
}

func TestKeyErrorFields(t *testing.T) {
	_, err := secure.ParseKey([]byte(hexK1[:10]))
	var ke *secure.KeyError
	if !errors.As(err, &ke) || ke.Length != 10 {
		t.Errorf("length error = %+v, want Length 10", ke)
	}
	_, err = secure.ParseKey([]byte(hexK1[:5] + "Z" + hexK1[6:]))
	if !errors.As(err, &ke) || ke.Pos != 6 || ke.Char != 'Z' {
		t.Errorf("non-hex error = %+v, want Pos 6 Char Z", ke)
	}
	_, err = secure.ParseKey([]byte(hexK1 + " " + hexK2))
	if !errors.As(err, &ke) || ke.Count != 2 {
		t.Errorf("too-many error = %+v, want Count 2", ke)
	}
}

func TestParseAcceptedKeys(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		problem error
		text    string
	}{
		{name: "one key", in: hexK1, want: []string{hexK1}},
		{name: "comments, blank lines, CRLF, indentation", in: "# rotation\n\n" + hexK1 + "\r\n   " + hexK2 + "  \n  # old\n" + hexK3 + "\n\n",
			want: []string{hexK1, hexK2, hexK3}},
		{name: "no trailing newline", in: hexK1 + "\n" + hexK2, want: []string{hexK1, hexK2}},
		{name: "empty", in: "", problem: secure.ErrNoKey, text: "no key found (want 64 hex digits)"},
		{name: "comments only", in: "# a\n\n# b\n", problem: secure.ErrNoKey, text: "no key found (want 64 hex digits)"},
		{name: "short key on line 3", in: hexK1 + "\n\n" + hexK2[:40] + "\n", problem: secure.ErrKeyLength,
			text: "line 3: key is 40 characters long, want exactly 64 hex digits"},
		{name: "trailing comment on a key line", in: "# x\n" + hexK1 + " # primary\n", problem: secure.ErrKeyNotHex,
			text: `line 2: non-hex character ' ' at position 65 of the key`},
		{name: "two keys on one line", in: hexK1 + " " + hexK2 + "\n", problem: secure.ErrTooManyKeys,
			text: "line 1: found 2 keys on one line, put one key per line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := secure.ParseAcceptedKeys([]byte(tt.in))
			if tt.problem == nil {
				if err != nil {
					t.Fatalf("ParseAcceptedKeys: %v", err)
				}
				if len(keys) != len(tt.want) {
					t.Fatalf("got %d keys, want %d", len(keys), len(tt.want))
				}
				for i := range keys {
					if got := fmt.Sprintf("%x", keys[i][:]); got != strings.ToLower(tt.want[i]) {
						t.Errorf("key %d = %s, want %s", i, got, strings.ToLower(tt.want[i]))
					}
				}
				return
			}
			if !errors.Is(err, tt.problem) {
				t.Fatalf("ParseAcceptedKeys = %v, want %v", err, tt.problem)
			}
			if err.Error() != tt.text {
				t.Errorf("error text\n got %q\nwant %q", err.Error(), tt.text)
			}
			if keys != nil {
				t.Error("keys returned with an error")
			}
		})
	}
}

// installFixture copies testdata/keys/name into a fresh directory with mode
// 0600 (git does not keep modes) and returns its path.
func installFixture(t *testing.T, name string, mode os.FileMode) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "keys", name))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseKeyFile(t *testing.T) {
	t.Run("valid", func(t *testing.T) {
		k, err := secure.ParseKeyFile(installFixture(t, "primary.key", 0o600))
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprintf("%x", k[:]) != hexK1 {
			t.Errorf("key = %x", k[:])
		}
	})
	t.Run("two keys", func(t *testing.T) {
		p := installFixture(t, "two.keys", 0o600)
		_, err := secure.ParseKeyFile(p)
		if !errors.Is(err, secure.ErrTooManyKeys) {
			t.Fatalf("ParseKeyFile = %v, want ErrTooManyKeys", err)
		}
		if want := fmt.Sprintf("key file %q: found 2 keys, exactly one is allowed here", p); err.Error() != want {
			t.Errorf("error text\n got %q\nwant %q", err, want)
		}
	})
	t.Run("group readable", func(t *testing.T) {
		p := installFixture(t, "primary.key", 0o640)
		_, err := secure.ParseKeyFile(p)
		if !errors.Is(err, secretfile.ErrPermissive) {
			t.Fatalf("ParseKeyFile = %v, want secretfile.ErrPermissive", err)
		}
		if want := fmt.Sprintf("key file: secret file %q: mode 0640 grants group/other access (must be 0600 or stricter)", p); err.Error() != want {
			t.Errorf("error text\n got %q\nwant %q", err, want)
		}
	})
	t.Run("symlink", func(t *testing.T) {
		target := installFixture(t, "primary.key", 0o600)
		p := filepath.Join(t.TempDir(), "link.key")
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		_, err := secure.ParseKeyFile(p)
		if !errors.Is(err, secretfile.ErrSymlink) || !strings.Contains(err.Error(), fmt.Sprintf("%q", p)) {
			t.Fatalf("ParseKeyFile = %v, want secretfile.ErrSymlink naming %s", err, p)
		}
	})
}

func TestParseAcceptedKeysFile(t *testing.T) {
	tests := []struct {
		fixture string
		want    []string
		problem error
		text    string // after `accepted key file "<path>": `
	}{
		{fixture: "accepted.keys", want: []string{hexK1, hexK2, hexK3}},
		{fixture: "primary.key", want: []string{hexK1}},
		{fixture: "comments-only.keys", problem: secure.ErrNoKey, text: "no key found (want 64 hex digits)"},
		{fixture: "bad-line3.keys", problem: secure.ErrKeyNotHex, text: `line 3: non-hex character 'n' at position 1 of the key`},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			p := installFixture(t, tt.fixture, 0o600)
			keys, err := secure.ParseAcceptedKeysFile(p)
			if tt.problem == nil {
				if err != nil {
					t.Fatal(err)
				}
				if len(keys) != len(tt.want) {
					t.Fatalf("got %d keys, want %d", len(keys), len(tt.want))
				}
				for i := range keys {
					if got := fmt.Sprintf("%x", keys[i][:]); got != strings.ToLower(tt.want[i]) {
						t.Errorf("key %d = %s", i, got)
					}
				}
				return
			}
			if !errors.Is(err, tt.problem) {
				t.Fatalf("got %v, want %v", err, tt.problem)
			}
			if want := fmt.Sprintf("accepted key file %q: %s", p, tt.text); err.Error() != want {
				t.Errorf("error text\n got %q\nwant %q", err, want)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		_, err := secure.ParseAcceptedKeysFile(filepath.Join(t.TempDir(), "none"))
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("got %v, want os.ErrNotExist", err)
		}
	})
}

func TestKeyNeverPrinted(t *testing.T) {
	k, err := secure.ParseKey([]byte(hexK3))
	if err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"%v", "%s", "%#v", "%x", "%X", "%+v", "%q"} {
		out := fmt.Sprintf(verb, k)
		if strings.Contains(strings.ToLower(out), "0123456789") || strings.Contains(out, "[1 35 69") {
			t.Errorf("%s prints key material: %s", verb, out)
		}
	}
	wrapped := fmt.Sprintf("%v", struct{ K secure.Key }{k})
	if strings.Contains(wrapped, "35") {
		t.Errorf("key inside a struct printed: %s", wrapped)
	}
}
