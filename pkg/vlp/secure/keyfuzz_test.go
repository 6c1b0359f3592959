package secure

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

// FuzzParseAcceptedKeys: key files are operator input; the parser must
// never panic, must only return keys that are 32 bytes spelled as 64 hex
// digits on some line of the input, and must explain every refusal with a
// *KeyError.
func FuzzParseAcceptedKeys(f *testing.F) {
	k := "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	for _, s := range []string{k, k + "\n", "# c\n\n" + k + "\n" + k, "  " + k + "  ", k[:63], k + "0", "zz" + k[2:], "", "#only\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		keys, err := ParseAcceptedKeys(in)
		if err != nil {
			var ke *KeyError
			if !errors.As(err, &ke) {
				t.Fatalf("error %v is not a *KeyError", err)
			}
			if len(keys) != 0 {
				t.Fatal("keys returned with an error")
			}
			return
		}
		if len(keys) == 0 {
			t.Fatal("no keys and no error")
		}
		lower := bytes.ToLower(in)
		for _, key := range keys {
			if !bytes.Contains(lower, []byte(hex.EncodeToString(key[:]))) {
				t.Fatalf("key %x does not appear in the input", key[:])
			}
		}
		if one, err := ParseKey(in); err == nil && len(keys) != 1 {
			t.Fatalf("ParseKey accepted input with %d keys: %x", len(keys), one[:])
		}
	})
}
