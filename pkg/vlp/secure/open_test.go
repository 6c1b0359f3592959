package secure_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/varta-go/varta/pkg/vlp"
	"github.com/varta-go/varta/pkg/vlp/secure"
)

func TestOpenSharedTriesEveryKey(t *testing.T) {
	keys := []secure.Key{testKey(1), testKey(2), testKey(3)}
	o := mustOpener(t, secure.OpenerConfig{SharedKeys: keys})
	for i, k := range keys {
		wire := sealOne(t, mustShared(t, k), plain(77, 5))
		var got [vlp.FrameSize]byte
		info, err := o.Open(&got, wire)
		if err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
		if got != *plain(77, 5) {
			t.Errorf("key %d: plaintext %x", i, got)
		}
		if info.KeyIndex != i || info.Attempts != len(keys) {
			t.Errorf("key %d: OpenInfo %+v, want KeyIndex %d and %d attempts", i, info, i, len(keys))
		}
		if iv, _ := secure.WireIV(wire); info.IV != iv {
			t.Errorf("key %d: IV %+v, want %+v", i, info.IV, iv)
		}
	}
	// A frame under an unknown key also costs one attempt per key.
	wire := sealOne(t, mustShared(t, testKey(9)), plain(77, 5))
	var got [vlp.FrameSize]byte
	info, err := o.Open(&got, wire)
	if !errors.Is(err, secure.ErrAuth) || info.Attempts != len(keys) || info.KeyIndex != -1 {
		t.Errorf("unknown key: %+v, %v; want ErrAuth after %d attempts", info, err, len(keys))
	}
}

// TestTamper: every modification of an authentic frame, and every frame
// under the wrong key or for the wrong pid, fails authentication and leaves
// dst untouched.
func TestTamper(t *testing.T) {
	shared, master := testKey(0x10), testKey(0x40)
	o := mustOpener(t, secure.OpenerConfig{SharedKeys: []secure.Key{shared}, MasterKey: &master})
	sharedWire := sealOne(t, mustShared(t, shared), plain(3, 1))
	masterWire := sealOne(t, mustMaster(t, master, 3), plain(3, 1))

	mutate := func(w []byte, f func(b []byte)) []byte {
		c := append([]byte(nil), w...)
		f(c)
		return c
	}
	tests := []struct {
		name string
		wire []byte
		want error
	}{
		{"shared: flipped tag byte", mutate(sharedWire, func(b []byte) { b[59] ^= 0x01 }), secure.ErrAuth},
		{"shared: flipped ciphertext byte", mutate(sharedWire, func(b []byte) { b[20] ^= 0x80 }), secure.ErrAuth},
		{"shared: flipped iv_random byte", mutate(sharedWire, func(b []byte) { b[0] ^= 0x01 }), secure.ErrAuth},
		{"shared: changed iv_counter", mutate(sharedWire, func(b []byte) { b[8]++ }), secure.ErrAuth},
		{"shared: wrong key", sealOne(t, mustShared(t, testKey(0x11)), plain(3, 1)), secure.ErrAuth},
		{"master: flipped tag byte", mutate(masterWire, func(b []byte) { b[63] ^= 0x01 }), secure.ErrAuth},
		{"master: altered cleartext pid", mutate(masterWire, func(b []byte) { binary.LittleEndian.PutUint32(b, 4) }), secure.ErrAuth},
		{"master: wrong master key", sealOne(t, mustMaster(t, testKey(0x41), 3), plain(3, 1)), secure.ErrAuth},
		{"master: sealed for pid 3 containing pid 2", sealOne(t, mustMaster(t, master, 3), plain(2, 1)), secure.ErrPidMismatch},
		{"master: sealed for pid 2 sent with cleartext pid 3", mutate(sealOne(t, mustMaster(t, master, 2), plain(3, 1)),
			func(b []byte) { binary.LittleEndian.PutUint32(b, 3) }), secure.ErrAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := [vlp.FrameSize]byte{0: 0xAA, 31: 0xBB}
			before := dst
			_, err := o.Open(&dst, tt.wire)
			if !errors.Is(err, tt.want) || !errors.Is(err, secure.ErrAuth) {
				t.Fatalf("Open = %v, want %v (an ErrAuth)", err, tt.want)
			}
			if dst != before {
				t.Errorf("dst written on failure: %x", dst)
			}
		})
	}
	// The untampered frames open.
	var dst [vlp.FrameSize]byte
	for name, w := range map[string][]byte{"shared": sharedWire, "master": masterWire} {
		if _, err := o.Open(&dst, w); err != nil || dst != *plain(3, 1) {
			t.Errorf("%s: untampered frame: %v", name, err)
		}
	}
}

func TestOpenDispatch(t *testing.T) {
	shared, master := testKey(0x10), testKey(0x40)
	sharedOnly := mustOpener(t, secure.OpenerConfig{SharedKeys: []secure.Key{shared}})
	masterOnly := mustOpener(t, secure.OpenerConfig{MasterKey: &master})
	sharedWire := sealOne(t, mustShared(t, shared), plain(3, 1))
	masterWire := sealOne(t, mustMaster(t, master, 3), plain(3, 1))
	tests := []struct {
		name         string
		o            *secure.Opener
		wire         []byte
		want         error
		wantAttempts int
	}{
		{"empty", sharedOnly, nil, secure.ErrWireSize, 0},
		{"plain VLP frame", sharedOnly, make([]byte, 32), secure.ErrWireSize, 0},
		{"59 bytes", sharedOnly, sharedWire[:59], secure.ErrWireSize, 0},
		{"61 bytes", sharedOnly, append(append([]byte(nil), sharedWire...), 0), secure.ErrWireSize, 0},
		{"63 bytes", masterOnly, masterWire[:63], secure.ErrWireSize, 0},
		{"65 bytes", masterOnly, append(append([]byte(nil), masterWire...), 0), secure.ErrWireSize, 0},
		{"master frame, no master key", sharedOnly, masterWire, secure.ErrNoMasterKey, 0},
		{"shared frame, no shared key", masterOnly, sharedWire, secure.ErrNoSharedKey, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dst [vlp.FrameSize]byte
			info, err := tt.o.Open(&dst, tt.wire)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open = %v, want %v", err, tt.want)
			}
			if info.Attempts != tt.wantAttempts {
				t.Errorf("Attempts = %d, want %d", info.Attempts, tt.wantAttempts)
			}
		})
	}
	if !errors.Is(secure.ErrNoMasterKey, secure.ErrAuth) || !errors.Is(secure.ErrNoSharedKey, secure.ErrAuth) || errors.Is(secure.ErrWireSize, secure.ErrAuth) {
		t.Error("ErrNoMasterKey and ErrNoSharedKey must wrap ErrAuth, ErrWireSize must not")
	}
	if _, err := secure.NewOpener(secure.OpenerConfig{}); err == nil {
		t.Error("NewOpener without keys succeeded")
	}
}

// TestAgentKeyCache opens frames from more pids than the cache holds, in an
// order that evicts and re-derives entries.
func TestAgentKeyCache(t *testing.T) {
	master := testKey(0x40)
	o := mustOpener(t, secure.OpenerConfig{MasterKey: &master, AgentKeyCache: 2})
	var wires [][]byte
	for pid := uint32(100); pid < 120; pid++ {
		wires = append(wires, sealOne(t, mustMaster(t, master, pid), plain(pid, 1)))
	}
	for round := range 3 {
		for i, w := range wires {
			if round == 1 {
				w = wires[len(wires)-1-i]
			}
			pid := binary.LittleEndian.Uint32(w)
			var dst [vlp.FrameSize]byte
			if _, err := o.Open(&dst, w); err != nil || dst != *plain(pid, 1) {
				t.Fatalf("round %d pid %d: %v", round, pid, err)
			}
		}
	}
}

func TestWireIV(t *testing.T) {
	w := make([]byte, secure.MasterFrameSize)
	for i := range w {
		w[i] = byte(i)
	}
	iv, ok := secure.WireIV(w)
	if !ok || iv.Random != [8]byte{4, 5, 6, 7, 8, 9, 10, 11} || iv.Counter != 0x0f0e0d0c {
		t.Errorf("master WireIV = %+v %v", iv, ok)
	}
	iv, ok = secure.WireIV(w[:secure.SharedFrameSize])
	if !ok || iv.Random != [8]byte{0, 1, 2, 3, 4, 5, 6, 7} || iv.Counter != 0x0b0a0908 {
		t.Errorf("shared WireIV = %+v %v", iv, ok)
	}
	if _, ok := secure.WireIV(w[:32]); ok {
		t.Error("WireIV accepted 32 bytes")
	}
}

func TestOpenZeroAllocs(t *testing.T) {
	keys := []secure.Key{testKey(1), testKey(2), testKey(3)}
	master := testKey(0x40)
	o := mustOpener(t, secure.OpenerConfig{SharedKeys: keys, MasterKey: &master})
	sharedWire := sealOne(t, mustShared(t, keys[2]), plain(50, 9))
	masterWire := sealOne(t, mustMaster(t, master, 50), plain(50, 9))
	badWire := append([]byte(nil), sharedWire...)
	badWire[59] ^= 1
	var dst [vlp.FrameSize]byte
	if _, err := o.Open(&dst, masterWire); err != nil { // warm the agent-key cache
		t.Fatal(err)
	}
	tests := []struct {
		name string
		wire []byte
		ok   bool
	}{
		{"shared, third of three keys", sharedWire, true},
		{"shared, authentication failure", badWire, false},
		{"master, cached agent key", masterWire, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := testing.AllocsPerRun(100, func() {
				if _, err := o.Open(&dst, tt.wire); (err == nil) != tt.ok {
					t.Fatalf("Open: %v", err)
				}
			})
			if n != 0 {
				t.Errorf("%v allocs/op, want 0", n)
			}
		})
	}
}
