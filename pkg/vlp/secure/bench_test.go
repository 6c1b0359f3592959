package secure_test

import (
	"testing"
	"time"

	"github.com/varta-go/varta/pkg/vlp"
	"github.com/varta-go/varta/pkg/vlp/secure"
)

func BenchmarkSeal(b *testing.B) {
	for _, bc := range []struct {
		name string
		s    *secure.Sealer
	}{
		{"shared", mustShared(b, testKey(1))},
		{"master", mustMaster(b, testKey(2), 4242)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			buf := make([]byte, secure.MaxFrameSize)
			p := plain(4242, 1)
			b.ReportAllocs()
			for b.Loop() {
				bc.s.Seal(buf, p)
				bc.s.Commit()
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	keys := []secure.Key{testKey(1), testKey(2), testKey(3)}
	master := testKey(0x40)
	for _, bc := range []struct {
		name  string
		cfg   secure.OpenerConfig
		wires [][]byte
	}{
		{"shared-1key", secure.OpenerConfig{SharedKeys: keys[:1]},
			[][]byte{sealOne(b, mustShared(b, keys[0]), plain(4242, 1))}},
		{"shared-3keys", secure.OpenerConfig{SharedKeys: keys},
			[][]byte{sealOne(b, mustShared(b, keys[0]), plain(4242, 1))}},
		{"master-cached", secure.OpenerConfig{MasterKey: &master},
			[][]byte{sealOne(b, mustMaster(b, master, 4242), plain(4242, 1))}},
		// Two pids that share a slot of a one-entry cache: every open
		// derives the agent key.
		{"master-uncached", secure.OpenerConfig{MasterKey: &master, AgentKeyCache: 1},
			[][]byte{sealOne(b, mustMaster(b, master, 4242), plain(4242, 1)), sealOne(b, mustMaster(b, master, 4243), plain(4243, 1))}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			o := mustOpener(b, bc.cfg)
			var dst [vlp.FrameSize]byte
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				if _, err := o.Open(&dst, bc.wires[i%len(bc.wires)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func BenchmarkReplayCheck(b *testing.B) {
	g := secure.NewReplayGuard(secure.ReplayConfig{})
	for pid := uint32(2); pid < 1000; pid++ {
		g.Check(t0, secure.IV{Random: prefix(1)}, beat(pid, 1))
	}
	f := beat(500, 1)
	iv := secure.IV{Random: prefix(1)}
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		iv.Counter++
		f.Nonce++
		now = now.Add(time.Microsecond)
		if g.Check(now, iv, f) != secure.Accepted {
			b.Fatal("refused")
		}
	}
}
