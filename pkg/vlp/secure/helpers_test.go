package secure_test

import (
	"testing"

	"github.com/varta-go/varta/pkg/vlp"
	"github.com/varta-go/varta/pkg/vlp/secure"
)

func testKey(b byte) secure.Key {
	var k secure.Key
	for i := range k {
		k[i] = b + byte(i)
	}
	return k
}

// plain encodes a regular Ok frame for pid with the given nonce.
func plain(pid uint32, nonce uint64) *[vlp.FrameSize]byte {
	f := vlp.Frame{Status: vlp.StatusOk, Pid: pid, Timestamp: nonce * 1000, Nonce: nonce}
	b := f.Marshal()
	return &b
}

// sealOne seals p with s and returns a copy of the wire bytes.
func sealOne(t testing.TB, s *secure.Sealer, p *[vlp.FrameSize]byte) []byte {
	t.Helper()
	buf := make([]byte, secure.MaxFrameSize)
	n := s.Seal(buf, p)
	if n != s.Size() {
		t.Fatalf("Seal returned %d, want %d", n, s.Size())
	}
	return buf[:n]
}

func mustOpener(t testing.TB, cfg secure.OpenerConfig) *secure.Opener {
	t.Helper()
	o, err := secure.NewOpener(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func mustShared(t testing.TB, k secure.Key) *secure.Sealer {
	t.Helper()
	s, err := secure.NewSharedSealer(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustMaster(t testing.TB, k secure.Key, pid uint32) *secure.Sealer {
	t.Helper()
	s, err := secure.NewMasterSealer(k, pid)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
