package secure_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"testing"

	"github.com/varta-go/varta/pkg/vlp"
	"github.com/varta-go/varta/pkg/vlp/internal/seedcorpus"
	"github.com/varta-go/varta/pkg/vlp/secure"
)

var updateCorpus = flag.Bool("update", false, "rewrite testdata/fuzz/FuzzOpen from the conformance vectors")

const corpusDir = "testdata/fuzz/FuzzOpen"

// corpusEntries: every secure vector's wire bytes, each also with a flipped
// tag byte, a flipped cleartext byte and one byte short.
func corpusEntries(t *testing.T) map[string][]byte {
	t.Helper()
	m := make(map[string][]byte)
	for _, v := range loadSecureVectors(t) {
		if v.ExpectedWireHex == "" {
			continue
		}
		w := unhex(t, v.ExpectedWireHex)
		m[v.ID] = seedcorpus.File(w)
		tag := bytes.Clone(w)
		tag[len(tag)-1] ^= 0x01
		m[v.ID+"-tag-flipped"] = seedcorpus.File(tag)
		head := bytes.Clone(w)
		head[0] ^= 0x01
		m[v.ID+"-first-byte-flipped"] = seedcorpus.File(head)
		m[v.ID+"-short"] = seedcorpus.File(w[:len(w)-1])
	}
	return m
}

// TestFuzzCorpus keeps the committed FuzzOpen seed corpus in step with the
// vectors; run with -update to regenerate it.
func TestFuzzCorpus(t *testing.T) {
	seedcorpus.Sync(t, corpusDir, corpusEntries(t), *updateCorpus)
}

// vectorKey is the key of both secure seal vectors (00..1f).
var vectorKey = testKey(0)

func FuzzOpen(f *testing.F) {
	shared := []secure.Key{testKey(0x10), vectorKey}
	master := vectorKey
	sharedOpener, err := secure.NewOpener(secure.OpenerConfig{SharedKeys: shared})
	if err != nil {
		f.Fatal(err)
	}
	masterOpener, err := secure.NewOpener(secure.OpenerConfig{MasterKey: &master, AgentKeyCache: 4})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []*secure.Sealer{mustShared(f, shared[0]), mustMaster(f, master, 4242)} {
		f.Add(sealOne(f, s, plain(4242, 1)))
	}
	f.Add(make([]byte, secure.SharedFrameSize))
	f.Add(make([]byte, secure.MasterFrameSize))
	f.Fuzz(func(t *testing.T, wire []byte) {
		for _, o := range []*secure.Opener{sharedOpener, masterOpener} {
			var dst [vlp.FrameSize]byte
			info, err := o.Open(&dst, wire)
			if err != nil {
				if !errors.Is(err, secure.ErrAuth) && !errors.Is(err, secure.ErrWireSize) {
					t.Fatalf("unexpected error %v", err)
				}
				if dst != ([vlp.FrameSize]byte{}) {
					t.Fatal("dst written on failure")
				}
				continue
			}
			// An authentic frame: sealing its plaintext again under the
			// same key and IV must give back exactly the same bytes.
			var s *secure.Sealer
			if len(wire) == secure.SharedFrameSize {
				s = mustShared(t, shared[info.KeyIndex])
			} else {
				pid := binary.LittleEndian.Uint32(wire)
				if binary.LittleEndian.Uint32(dst[4:8]) != pid {
					t.Fatal("master frame opened with an inner pid other than the cleartext pid")
				}
				s = mustMaster(t, master, pid)
			}
			s.SetIV(info.IV.Random, info.IV.Counter)
			if again := sealOne(t, s, &dst); !bytes.Equal(again, wire) {
				t.Fatalf("reseal differs:\n got %x\nwant %x", again, wire)
			}
		}
	})
}
