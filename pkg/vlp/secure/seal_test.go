package secure_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/varta-go/varta/pkg/vlp"
	"github.com/varta-go/varta/pkg/vlp/secure"
)

func TestSealerSession(t *testing.T) {
	a, b := mustShared(t, testKey(1)), mustShared(t, testKey(1))
	saltA, idx, prefix, ctr := a.SessionState()
	saltB, _, _, _ := b.SessionState()
	if saltA == saltB || saltA == ([secure.SaltSize]byte{}) {
		t.Errorf("salts not random: %x %x", saltA, saltB)
	}
	if idx != 0 || ctr != 0 || prefix != secure.IVPrefix(saltA, 0) {
		t.Errorf("new session at index %d counter %d prefix %x, want 0, 0, IVPrefix(salt, 0)", idx, ctr, prefix)
	}
	w := sealOne(t, a, plain(5, 1))
	if iv, _ := secure.WireIV(w); iv.Random != prefix || iv.Counter != 0 {
		t.Errorf("first frame IV %+v, want prefix %x counter 0", iv, prefix)
	}
}

func TestSealerCommitDiscipline(t *testing.T) {
	s := mustShared(t, testKey(1))
	p := plain(5, 1)
	first := sealOne(t, s, p)
	again := sealOne(t, s, p)
	if !bytes.Equal(first, again) {
		t.Error("Seal without Commit changed the nonce")
	}
	for want := uint32(1); want <= 3; want++ {
		s.Commit()
		iv, _ := secure.WireIV(sealOne(t, s, p))
		if iv.Counter != want {
			t.Errorf("after %d commits counter %d", want, iv.Counter)
		}
	}
}

func TestSealerPrefixRollover(t *testing.T) {
	s := mustShared(t, testKey(1))
	salt, _, _, _ := s.SessionState()
	s.SetPosition(5, 0xFFFF_FFFD)
	iv, _ := secure.WireIV(sealOne(t, s, plain(5, 1)))
	if iv.Counter != 0xFFFF_FFFD || iv.Random != secure.IVPrefix(salt, 5) {
		t.Fatalf("IV %+v before rollover", iv)
	}
	s.Commit()
	iv, _ = secure.WireIV(sealOne(t, s, plain(5, 1)))
	if iv.Counter != 0xFFFF_FFFE || iv.Random != secure.IVPrefix(salt, 5) {
		t.Fatalf("IV %+v, want the last usable counter 0xFFFFFFFE under index 5", iv)
	}
	s.Commit() // the counter would reach 0xFFFF_FFFF: next prefix
	gotSalt, idx, prefix, ctr := s.SessionState()
	if gotSalt != salt || idx != 6 || ctr != 0 || prefix != secure.IVPrefix(salt, 6) {
		t.Errorf("after rollover: index %d counter %d prefix %x", idx, ctr, prefix)
	}
	iv, _ = secure.WireIV(sealOne(t, s, plain(5, 1)))
	if iv.Counter != 0 || iv.Random != secure.IVPrefix(salt, 6) {
		t.Errorf("first frame of the next prefix: %+v", iv)
	}
}

func TestSealerIndexOverflowDrawsNewSalt(t *testing.T) {
	s := mustShared(t, testKey(1))
	salt, _, _, _ := s.SessionState()
	s.SetPosition(^uint32(0), 0xFFFF_FFFE)
	s.Commit()
	newSalt, idx, prefix, ctr := s.SessionState()
	if newSalt == salt || idx != 0 || ctr != 0 || prefix != secure.IVPrefix(newSalt, 0) {
		t.Errorf("after index overflow: salt changed %v, index %d, counter %d", newSalt != salt, idx, ctr)
	}
}

func TestSealerReset(t *testing.T) {
	s := mustMaster(t, testKey(7), 42)
	salt, _, _, _ := s.SessionState()
	s.SetPosition(3, 17)
	if err := s.Reset(); err != nil {
		t.Fatal(err)
	}
	newSalt, idx, prefix, ctr := s.SessionState()
	if newSalt == salt || idx != 0 || ctr != 0 || prefix != secure.IVPrefix(newSalt, 0) {
		t.Errorf("Reset: salt changed %v, index %d, counter %d", newSalt != salt, idx, ctr)
	}
}

func TestSealerLayout(t *testing.T) {
	master := testKey(7)
	ms := mustMaster(t, master, 0x01020304)
	ss := mustShared(t, testKey(1))
	if ms.Size() != secure.MasterFrameSize || ss.Size() != secure.SharedFrameSize {
		t.Fatalf("sizes %d %d", ms.Size(), ss.Size())
	}
	w := sealOne(t, ms, plain(0x01020304, 1))
	if binary.LittleEndian.Uint32(w) != 0x01020304 {
		t.Errorf("cleartext pid %x", w[:4])
	}
	// A larger destination is fine; only Size() bytes are written.
	big := bytes.Repeat([]byte{0xEE}, 100)
	if n := ss.Seal(big, plain(5, 1)); n != 60 || big[60] != 0xEE {
		t.Errorf("Seal into 100 bytes returned %d, byte 60 = %x", n, big[60])
	}
	defer func() {
		if recover() == nil {
			t.Error("Seal into a short buffer did not panic")
		}
	}()
	ss.Seal(make([]byte, 59), plain(5, 1))
}

// TestSealOpenGuard runs a session through Sealer, Opener, vlp.Decode and
// ReplayGuard the way sender and observer do, including a dropped send
// (sealed, never committed) and a reconnect.
func TestSealOpenGuard(t *testing.T) {
	master := testKey(0x40)
	o := mustOpener(t, secure.OpenerConfig{MasterKey: &master})
	g := secure.NewReplayGuard(secure.ReplayConfig{})
	s := mustMaster(t, master, 321)
	now := t0
	var dst [vlp.FrameSize]byte
	deliver := func(w []byte) secure.Verdict {
		t.Helper()
		info, err := o.Open(&dst, w)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		var f vlp.Frame
		if err := vlp.Decode(dst[:], &f); err != nil {
			t.Fatalf("Decode: %v", err)
		}
		return g.Check(now, info.IV, &f)
	}
	var sent [][]byte
	for nonce := uint64(1); nonce <= 5; nonce++ {
		w := sealOne(t, s, plain(321, nonce))
		if nonce == 3 {
			// Dropped by the kernel: not committed, resealed with the same counter.
			w = sealOne(t, s, plain(321, nonce))
		}
		s.Commit()
		sent = append(sent, w)
		if v := deliver(w); v != secure.Accepted {
			t.Fatalf("nonce %d: %v", nonce, v)
		}
	}
	if err := s.Reset(); err != nil { // reconnect: new salt, counter 0
		t.Fatal(err)
	}
	if v := deliver(sealOne(t, s, plain(321, 6))); v != secure.Accepted {
		t.Errorf("first frame after reconnect: %v", v)
	}
	s.Commit()
	for i, w := range sent {
		if v := deliver(w); v != secure.Replay {
			t.Errorf("replayed frame %d: %v", i, v)
		}
	}
}

func TestSealZeroAllocs(t *testing.T) {
	ss := mustShared(t, testKey(1))
	ms := mustMaster(t, testKey(2), 99)
	buf := make([]byte, secure.MaxFrameSize)
	p := plain(99, 1)
	for name, s := range map[string]*secure.Sealer{"shared": ss, "master": ms} {
		n := testing.AllocsPerRun(100, func() {
			s.Seal(buf, p)
			s.Commit()
		})
		if n != 0 {
			t.Errorf("%s: Seal+Commit %v allocs/op, want 0", name, n)
		}
	}
}
