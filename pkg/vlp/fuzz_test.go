package vlp_test

import (
	"errors"
	"flag"
	"testing"

	"github.com/varta-go/varta/pkg/vlp"
	"github.com/varta-go/varta/pkg/vlp/internal/seedcorpus"
)

var updateCorpus = flag.Bool("update", false, "rewrite testdata/fuzz/FuzzDecode from the conformance vectors")

const corpusDir = "testdata/fuzz/FuzzDecode"

// corpusEntries returns the seed corpus: one file per frame vector, named by
// the vector id, plus the plaintext of every secure vector.
func corpusEntries(t *testing.T) map[string][]byte {
	t.Helper()
	vf := loadVectors(t)
	m := make(map[string][]byte)
	for _, v := range vf.Frames {
		m[v.ID] = seedcorpus.File(v.wire(t))
	}
	for _, v := range vf.Secure {
		if v.PlaintextHex != "" {
			m[v.ID+"-plaintext"] = seedcorpus.File(mustHex(t, v.PlaintextHex))
		}
	}
	return m
}

// TestFuzzCorpus keeps the committed seed corpus in step with the vectors,
// so that a plain `go test` replays every vector through FuzzDecode. Run
// with -update to regenerate it.
func TestFuzzCorpus(t *testing.T) {
	seedcorpus.Sync(t, corpusDir, corpusEntries(t), *updateCorpus)
}

func FuzzDecode(f *testing.F) {
	// Precedence seeds besides the committed vectors corpus.
	f.Add(wireOf(okFrame, false, nil))
	f.Add(wireOf(okFrame, false, func(b *[32]byte) { b[3] ^= 1 }))
	f.Add(wireOf(vlp.Frame{Status: vlp.StatusStall, Pid: 1}, true, nil))
	f.Add([]byte{})
	f.Add(make([]byte, 31))
	f.Fuzz(func(t *testing.T, in []byte) {
		var fr vlp.Frame
		err := vlp.Decode(in, &fr)
		if len(in) != vlp.FrameSize {
			var se *vlp.SizeError
			if !errors.As(err, &se) || se.Len != len(in) {
				t.Fatalf("Decode(%d bytes) = %v, want SizeError", len(in), err)
			}
			return
		}
		if err != nil {
			var de vlp.DecodeError
			if !errors.As(err, &de) || de.Kind() >= vlp.NumKinds {
				t.Fatalf("Decode(%x) = %T %v, want a DecodeError", in, err, err)
			}
			if de.Error() == "" || de.Label() != de.Kind().Label() {
				t.Fatalf("inconsistent error %v: label %q kind %d", err, de.Label(), de.Kind())
			}
			return
		}
		var out [vlp.FrameSize]byte
		fr.Encode(&out)
		if string(out[:]) != string(in) {
			t.Fatalf("re-encode differs:\n in %x\nout %x", in, out)
		}
		if fr.Status >= vlp.StatusStall || fr.Pid <= 1 || fr.Timestamp == vlp.TimestampInvalid {
			t.Fatalf("Decode accepted an invalid frame %+v", fr)
		}
		if fr.Nonce == vlp.NonceTerminal && !fr.IsTerminal() {
			t.Fatalf("Decode accepted the terminal nonce without Critical: %+v", fr)
		}
		if err := fr.Validate(); err != nil {
			t.Fatalf("Validate of a decoded frame: %v", err)
		}
	})
}
