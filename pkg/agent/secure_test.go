package agent_test

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/varta-go/varta/pkg/agent"
	"github.com/varta-go/varta/pkg/agent/agenttest"
	"github.com/varta-go/varta/pkg/vlp"
	"github.com/varta-go/varta/pkg/vlp/secure"
)

func newKey(t testing.TB) *secure.Key {
	t.Helper()
	var k secure.Key
	if _, err := rand.Read(k[:]); err != nil {
		t.Fatal(err)
	}
	return &k
}

// secureRecv returns a receive function that opens secure frames the way
// the observer does and returns the inner frame and the wire IV.
func secureRecv(t testing.TB, cfg secure.OpenerConfig) func(testing.TB, *agenttest.Receiver) (vlp.Frame, secure.IV, int) {
	o, err := secure.NewOpener(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return func(t testing.TB, r *agenttest.Receiver) (vlp.Frame, secure.IV, int) {
		t.Helper()
		d, err := r.Recv(2 * time.Second)
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		var plain [vlp.FrameSize]byte
		info, err := o.Open(&plain, d.Data)
		if err != nil {
			t.Fatalf("open %d-byte frame: %v", len(d.Data), err)
		}
		var f vlp.Frame
		if err := vlp.Decode(plain[:], &f); err != nil {
			t.Fatalf("decode inner frame: %v", err)
		}
		return f, info.IV, len(d.Data)
	}
}

// secureModes builds, per mode, the agent options and the observer's
// opener configuration for a fresh random key.
func secureModes(t testing.TB) []struct {
	name string
	o    agent.Options
	cfg  secure.OpenerConfig
	size int
} {
	shared, master := newKey(t), newKey(t)
	return []struct {
		name string
		o    agent.Options
		cfg  secure.OpenerConfig
		size int
	}{
		{"shared-key", agent.Options{SharedKey: shared}, secure.OpenerConfig{SharedKeys: []secure.Key{*shared}}, secure.SharedFrameSize},
		{"master-key", agent.Options{MasterKey: master}, secure.OpenerConfig{MasterKey: master}, secure.MasterFrameSize},
	}
}

func secureTransports() []transport {
	var ts []transport
	for _, mode := range []string{"shared-key", "master-key"} {
		var recv func(testing.TB, *agenttest.Receiver) (vlp.Frame, secure.IV, int)
		ts = append(ts, transport{
			name: "secure-udp-" + mode,
			open: func(t testing.TB) (*agenttest.Receiver, agent.Options) {
				for _, m := range secureModes(t) {
					if m.name == mode {
						r := listenUDP(t)
						recv = secureRecv(t, m.cfg)
						o := m.o
						o.UDPAddr = r.Addr()
						return r, o
					}
				}
				panic("unknown mode")
			},
			recv: func(t testing.TB, r *agenttest.Receiver) vlp.Frame {
				f, _, _ := recv(t, r)
				return f
			},
		})
	}
	return ts
}

// TestSecureSession checks the sender nonce discipline against the real
// opener and replay guard: IV counters 0, 1, 2 under one prefix, a fresh
// prefix with counter 0 after a reconnect, every frame accepted as fresh.
func TestSecureSession(t *testing.T) {
	for _, m := range secureModes(t) {
		t.Run(m.name, func(t *testing.T) {
			r := listenUDP(t)
			o := m.o
			o.UDPAddr = r.Addr()
			a := connect(t, o)
			recv := secureRecv(t, m.cfg)
			guard := secure.NewReplayGuard(secure.ReplayConfig{})

			check := func(wantNonce uint64, wantCounter uint32) secure.IV {
				t.Helper()
				f, iv, size := recv(t, r)
				if size != m.size {
					t.Fatalf("wire size %d, want %d", size, m.size)
				}
				if f.Nonce != wantNonce || iv.Counter != wantCounter {
					t.Fatalf("nonce %d counter %d, want %d and %d", f.Nonce, iv.Counter, wantNonce, wantCounter)
				}
				if v := guard.Check(time.Now(), iv, &f); v != secure.Accepted {
					t.Fatalf("replay guard: %v", v)
				}
				return iv
			}
			for i := 1; i <= 3; i++ {
				a.Beat(vlp.StatusOk, 0)
			}
			first := check(1, 0)
			if iv := check(2, 1); iv.Random != first.Random {
				t.Fatal("prefix changed within a session")
			}
			check(3, 2)

			if err := a.Reconnect(); err != nil {
				t.Fatal(err)
			}
			a.Beat(vlp.StatusOk, 0)
			if iv := check(4, 0); iv.Random == first.Random {
				t.Fatal("reconnect kept the old salt")
			}
			a.Terminal()
			f, iv, _ := recv(t, r)
			if !f.IsTerminal() || iv.Counter != 1 || guard.Check(time.Now(), iv, &f) != secure.Accepted {
				t.Fatalf("terminal %+v counter %d", f, iv.Counter)
			}
		})
	}
}

// TestSecureDropDoesNotAdvanceCounter: a dropped send reuses the IV counter
// (nothing left the process), a sent one advances it.
func TestSecureDropDoesNotAdvanceCounter(t *testing.T) {
	m := secureModes(t)[0]
	r := listenUDP(t)
	addr := r.Addr()
	o := m.o
	o.UDPAddr = addr
	a := connect(t, o)
	recv := secureRecv(t, m.cfg)
	a.Beat(vlp.StatusOk, 0)
	recv(t, r)
	r.Close()
	var drop agent.Result
	for i := 0; i < 50 && drop.Outcome != agent.Dropped; i++ {
		if res := a.Beat(vlp.StatusOk, 0); res.Outcome == agent.Dropped {
			drop = res
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if drop.Outcome != agent.Dropped {
		t.Fatal("no drop after the receiver closed")
	}
	sentBefore := a.Stats().Sent
	// The same port again: the observer restarted.
	r3, err := agenttest.ListenUDP(addr)
	if err != nil {
		t.Fatalf("rebind %s: %v", addr, err)
	}
	defer r3.Close()
	if res := a.Beat(vlp.StatusOk, 0); !res.Sent() || res.Nonce != drop.Nonce {
		t.Fatalf("after the observer came back: %v, want nonce %d sent", res, drop.Nonce)
	}
	f, iv, _ := recv(t, r3)
	// Every beat sent before consumed one counter value starting at 0.
	if f.Nonce != drop.Nonce || uint64(iv.Counter) != sentBefore {
		t.Fatalf("nonce %d counter %d, want nonce %d counter %d", f.Nonce, iv.Counter, drop.Nonce, sentBefore)
	}
}
