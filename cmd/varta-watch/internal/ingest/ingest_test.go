package ingest

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/events"
	"github.com/varta-go/varta/cmd/varta-watch/internal/listener"
	"github.com/varta-go/varta/cmd/varta-watch/internal/procfs"
	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/cmd/varta-watch/internal/tracker"
	"github.com/varta-go/varta/pkg/vlp"
	"github.com/varta-go/varta/pkg/vlp/secure"
)

type collect []events.Event

func (c *collect) Emit(e events.Event) { *c = append(*c, e) }

func newPipe(t testing.TB, o Options, capacity int) (*Pipeline, *stats.Counters, *collect) {
	t.Helper()
	c := stats.New()
	tr, err := tracker.New(tracker.Options{Capacity: capacity, Threshold: 1e9, PidLimit: tracker.MaxDenseIndex}, c)
	if err != nil {
		t.Fatal(err)
	}
	ev := &collect{}
	return New(o, tr, c, ev, nil), c, ev
}

// wires backs the datagrams fill builds (heap memory, so encoding into it
// does not allocate).
var wires = new([listener.BatchSize][vlp.FrameSize]byte)

// fill puts one datagram per frame into b, as the kernel would report it.
func fill(b *listener.Batch, frames []vlp.Frame, uid uint32) {
	for i := range frames {
		frames[i].Encode(&wires[i])
		d := &b.D[i]
		d.Data = wires[i][:]
		d.Len, d.HasCreds, d.Pid, d.Uid = vlp.FrameSize, true, int32(frames[i].Pid), uid
	}
}

func TestUnixPipeline(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    Options
		mutate  func(d *listener.Datagram)
		beats   int
		counter func(c *stats.Counters) uint64
		kind    events.Kind
	}{
		{"accepted", Options{KernelCredentials: true, SelfUID: 7}, nil, 1, nil, events.KindBeat},
		{"foreign uid", Options{KernelCredentials: true, SelfUID: 7}, func(d *listener.Datagram) { d.Uid = 8 }, 0,
			func(c *stats.Counters) uint64 { return c.FrameUIDRefused.Load() }, 0},
		{"allowed uid", Options{KernelCredentials: true, SelfUID: 7, AllowUIDs: []uint32{8}}, func(d *listener.Datagram) { d.Uid = 8 }, 1, nil, events.KindBeat},
		{"allowed gid", Options{KernelCredentials: true, SelfUID: 7, AllowGIDs: []uint32{50}}, func(d *listener.Datagram) { d.Uid, d.Gid = 8, 50 }, 1, nil, events.KindBeat},
		{"no credentials", Options{KernelCredentials: true, SelfUID: 7}, func(d *listener.Datagram) { d.HasCreds = false }, 0,
			func(c *stats.Counters) uint64 { return c.IOErrors.Load() }, events.KindIO},
		{"control truncated", Options{KernelCredentials: true, SelfUID: 7}, func(d *listener.Datagram) { d.CtrlTruncated = true }, 0,
			func(c *stats.Counters) uint64 { return c.CtrlTruncated.Load() }, events.KindCtrunc},
		{"pid spoofed", Options{KernelCredentials: true, SelfUID: 7}, func(d *listener.Datagram) { d.Pid++ }, 0,
			func(c *stats.Counters) uint64 { return c.FrameAuthFailures.Load() }, events.KindMismatch},
		{"short", Options{KernelCredentials: true, SelfUID: 7}, func(d *listener.Datagram) { d.Len, d.Data = 31, d.Data[:31] }, 0,
			func(c *stats.Counters) uint64 { return c.TruncatedDatagrams.Load() }, 0},
		{"bad crc", Options{KernelCredentials: true, SelfUID: 7}, func(d *listener.Datagram) { d.Data[30] ^= 1 }, 0,
			func(c *stats.Counters) uint64 { return c.DecodeErrors[vlp.KindBadCrc].Load() }, events.KindDecode},
		{"global bucket empty", Options{KernelCredentials: true, SelfUID: 7, GlobalRate: 1, GlobalBurst: 0.5}, nil, 0,
			func(c *stats.Counters) uint64 { return c.RateLimited[stats.RateLimitGlobal].Load() }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, c, ev := newPipe(t, tc.opts, 16)
			b := listener.NewBatch()
			fill(b, []vlp.Frame{{Pid: 100, Nonce: 1}}, 7)
			if tc.mutate != nil {
				tc.mutate(&b.D[0])
			}
			p.UnixBatch(b, 1, 1000, 0)
			if got := p.tr.Tracked(); got != tc.beats {
				t.Fatalf("tracked %d, want %d", got, tc.beats)
			}
			if tc.counter != nil && tc.counter(c) != 1 {
				t.Fatalf("refusal not counted")
			}
			if tc.kind != 0 || tc.beats == 1 {
				if len(*ev) != 1 || (*ev)[0].Kind != tc.kind {
					t.Fatalf("events %+v, want one of kind %v", *ev, tc.kind)
				}
			} else if len(*ev) != 0 {
				t.Fatalf("unexpected events %+v", *ev)
			}
		})
	}
}

func TestGlobalBucketRefills(t *testing.T) {
	k := bucket{rate: 10, burst: 2, tokens: 2}
	if got := k.take(1, 5); got != 2 {
		t.Fatalf("burst granted %d, want 2", got)
	}
	if got := k.take(1+100e6, 2); got != 1 { // 100 ms later: one token at 10/s
		t.Fatalf("refill granted %d, want 1", got)
	}
	if got := k.take(1+100e6, 1); got != 0 {
		t.Fatal("bucket over-refilled")
	}
	if got := k.take(1+10e9, 9); got != 2 { // a long pause refills to the burst only
		t.Fatalf("after a pause granted %d, want 2", got)
	}
	off := bucket{}
	if got := off.take(1, 64); got != 64 {
		t.Fatalf("bucket off granted %d", got)
	}
}

// TestGlobalBucketPerDatagram: in one batch, the first datagrams take the
// tokens and the rest are counted as dropped, whatever the transport.
func TestGlobalBucketPerDatagram(t *testing.T) {
	p, c, _ := newPipe(t, Options{KernelCredentials: true, SelfUID: 7, GlobalRate: 1, GlobalBurst: 3}, 16)
	b := listener.NewBatch()
	frames := make([]vlp.Frame, 5)
	for i := range frames {
		frames[i] = vlp.Frame{Pid: uint32(100 + i), Nonce: 1}
	}
	fill(b, frames, 7)
	p.UnixBatch(b, 5, 1000, 0)
	if p.tr.Tracked() != 3 || c.RateLimited[stats.RateLimitGlobal].Load() != 2 {
		t.Fatalf("tracked %d dropped %d", p.tr.Tracked(), c.RateLimited[stats.RateLimitGlobal].Load())
	}
	for pid := uint32(100); pid < 103; pid++ {
		if _, ok := p.tr.Lookup(pid); !ok {
			t.Fatalf("pid %d (early in the batch) not tracked", pid)
		}
	}
}

// udpBatch puts raw datagrams into a batch as the UDP listener reports
// them.
func udpBatch(b *listener.Batch, wire ...[]byte) int {
	for i, w := range wire {
		d := &b.D[i]
		d.Data, d.Len = append([]byte(nil), w...), len(w)
	}
	return len(wire)
}

func TestUDPBatch(t *testing.T) {
	beat := func(pid uint32, nonce uint64) []byte {
		w := (&vlp.Frame{Pid: pid, Nonce: nonce}).Marshal()
		return w[:]
	}
	bad := beat(200, 1)
	bad[30] ^= 1
	for _, tc := range []struct {
		name    string
		wire    []byte
		tracked int
		counter func(c *stats.Counters) uint64
	}{
		{"accepted", beat(100, 1), 1, nil},
		{"pid at pid_max", beat(32768, 1), 0, func(c *stats.Counters) uint64 { return c.FrameRejectedPidAboveMax.Load() }},
		{"pid below pid_max", beat(32767, 1), 1, nil},
		{"short", beat(100, 1)[:31], 0, func(c *stats.Counters) uint64 { return c.TruncatedDatagrams.Load() }},
		{"bad crc", bad, 0, func(c *stats.Counters) uint64 { return c.DecodeErrors[vlp.KindBadCrc].Load() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, c, _ := newPipe(t, Options{PidMax: 32768, UDPOrigin: vlp.OriginNetworkUnverified}, 16)
			b := listener.NewBatch()
			p.UDPBatch(b, udpBatch(b, tc.wire), 1, 0)
			if p.tr.Tracked() != tc.tracked || (tc.counter != nil && tc.counter(c) != 1) {
				t.Fatalf("tracked %d", p.tr.Tracked())
			}
			if tc.tracked == 1 {
				var f vlp.Frame
				if err := vlp.Decode(tc.wire, &f); err != nil {
					t.Fatal(err)
				}
				if s, _ := p.tr.Lookup(f.Pid); s.Origin != vlp.OriginNetworkUnverified {
					t.Fatalf("origin %v", s.Origin)
				}
			}
		})
	}
}

func TestSecureBatch(t *testing.T) {
	var key secure.Key
	key[0] = 1
	var other secure.Key
	other[0] = 2
	seal := func(k secure.Key, f vlp.Frame) []byte {
		s, err := secure.NewSharedSealer(k)
		if err != nil {
			t.Fatal(err)
		}
		w := f.Marshal()
		out := make([]byte, s.Size())
		return out[:s.Seal(out, &w)]
	}
	good := seal(key, vlp.Frame{Pid: 100, Nonce: 1})
	for _, tc := range []struct {
		name    string
		wire    [][]byte
		tracked int
		opts    Options
		counter func(c *stats.Counters) uint64
		want    uint64
	}{
		{"accepted", [][]byte{good}, 1, Options{}, func(c *stats.Counters) uint64 { return c.SecureAEADAttempts.Load() }, 1},
		{"replayed", [][]byte{good, good}, 1, Options{}, func(c *stats.Counters) uint64 { return c.SecureReplayRefused.Load() }, 1},
		{"wrong key", [][]byte{seal(other, vlp.Frame{Pid: 100, Nonce: 1})}, 0, Options{}, func(c *stats.Counters) uint64 { return c.FrameDecryptFailures.Load() }, 1},
		{"plaintext size", [][]byte{good[:32]}, 0, Options{}, func(c *stats.Counters) uint64 { return c.TruncatedDatagrams.Load() }, 1},
		{"pid at pid_max", [][]byte{seal(key, vlp.Frame{Pid: 40000, Nonce: 1})}, 0, Options{PidMax: 32768},
			func(c *stats.Counters) uint64 { return c.FrameRejectedPidAboveMax.Load() }, 1},
		{"bucket after authentication", [][]byte{good, seal(key, vlp.Frame{Pid: 101, Nonce: 1})}, 1, Options{GlobalRate: 1, GlobalBurst: 1},
			func(c *stats.Counters) uint64 {
				return c.SecureAEADAttempts.Load()*10 + c.RateLimited[stats.RateLimitGlobal].Load()
			}, 21},
		{"garbage does not take the bucket", [][]byte{make([]byte, 60), make([]byte, 60), good}, 1, Options{GlobalRate: 1, GlobalBurst: 1},
			func(c *stats.Counters) uint64 {
				return c.FrameDecryptFailures.Load()*10 + c.RateLimited[stats.RateLimitGlobal].Load()
			}, 20},
		{"replay table full", [][]byte{good, seal(key, vlp.Frame{Pid: 101, Nonce: 1})}, 1, Options{Replay: secure.ReplayConfig{Capacity: 1}},
			func(c *stats.Counters) uint64 { return c.SenderStateFull.Load() }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op, err := secure.NewOpener(secure.OpenerConfig{SharedKeys: []secure.Key{key}})
			if err != nil {
				t.Fatal(err)
			}
			o := tc.opts
			o.Opener, o.UDPOrigin = op, vlp.OriginOperatorAttestedTransport
			p, c, _ := newPipe(t, o, 16)
			b := listener.NewBatch()
			p.SecureBatch(b, udpBatch(b, tc.wire...), 1, 1e9)
			if got := tc.counter(c); p.tr.Tracked() != tc.tracked || got != tc.want {
				t.Fatalf("tracked %d, counter %d (want %d %d)", p.tr.Tracked(), got, tc.tracked, tc.want)
			}
			if tc.tracked == 1 {
				if s, _ := p.tr.Lookup(100); s.Origin != vlp.OriginOperatorAttestedTransport {
					t.Fatalf("origin %v", s.Origin)
				}
			}
		})
	}
}

func TestDefaultGlobalRate(t *testing.T) {
	for capacity, want := range map[int]float64{1: 5000, 2500: 5000, 4096: 8192, 65536: 131072} {
		if got := DefaultGlobalRate(capacity); got != want {
			t.Errorf("capacity %d: %v, want %v", capacity, got, want)
		}
	}
}

// fleet drives the pipeline with n kernel-attested agents (pids 2…n+1),
// one batch of beats at a time, as the kernel would deliver them.
type fleet struct {
	p      *Pipeline
	c      *stats.Counters
	frames []vlp.Frame
	batch  *listener.Batch
	now    int64
	next   int
}

// newFleet builds the pipeline (no events file, buckets out of the way)
// and admits every agent once.
func newFleet(b *testing.B, n int) *fleet {
	p, c, _ := newPipe(b, Options{KernelCredentials: true, SelfUID: 7, GlobalRate: 1e9, GlobalBurst: 1e9}, n)
	p.emit = nopEmitter{}
	f := &fleet{p: p, c: c, frames: make([]vlp.Frame, n), batch: listener.NewBatch(), now: 1}
	for i := range f.frames {
		f.frames[i] = vlp.Frame{Pid: uint32(i + 2), Nonce: 1}
	}
	for i := 0; i < n; i += listener.BatchSize {
		k := min(listener.BatchSize, n-i)
		fill(f.batch, f.frames[i:i+k], 7)
		p.UnixBatch(f.batch, k, f.now, 0)
	}
	return f
}

// step sends the next agents' beats as one batch and returns its size.
func (f *fleet) step() int {
	k := min(listener.BatchSize, len(f.frames)-f.next)
	for j := 0; j < k; j++ {
		f.frames[f.next+j].Nonce++
	}
	fill(f.batch, f.frames[f.next:f.next+k], 7) // stands in for the kernel's copy
	f.now += 1000
	f.p.UnixBatch(f.batch, k, f.now, 0)
	if f.next += k; f.next >= len(f.frames) {
		f.next = 0
	}
	return k
}

// BenchmarkUnixBatch measures the whole per-datagram pipeline (credentials,
// bucket, decode, identity, tracker, event emission) for full batches of
// accepted beats, at several fleet sizes. Reported per datagram.
func BenchmarkUnixBatch(b *testing.B) {
	for _, n := range []int{100, 1024, 10000, 65536} {
		b.Run(fmt.Sprintf("agents=%d", n), func(b *testing.B) {
			f := newFleet(b, n)
			b.ReportAllocs()
			datagrams := 0
			for b.Loop() {
				datagrams += f.step()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(datagrams), "ns/datagram")
		})
	}
}

// TestMemoryPerAgent reports the heap cost of tracking agents and fails if
// it exceeds the 512-byte budget per agent.
func TestMemoryPerAgent(t *testing.T) {
	const n = 65536
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := stats.New()
	tr, err := tracker.New(tracker.Options{Capacity: n, Threshold: 1e9}, c)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		tr.Observe(&vlp.Frame{Pid: uint32(i + 2), Nonce: 1}, vlp.OriginNetworkUnverified, int64(i))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("heap per tracked agent at %d agents: %.0f bytes", n, per)
	if per > 512 {
		t.Fatalf("%.0f bytes per tracked agent, budget 512", per)
	}
	runtime.KeepAlive(tr)
}

// TestDyingGaspPassesEmptyBucket: with the global bucket empty, the first
// terminal frame after regular beats is still accepted; a second terminal
// frame, a regular beat and a terminal frame from an unknown pid are not.
func TestDyingGaspPassesEmptyBucket(t *testing.T) {
	p, c, ev := newPipe(t, Options{KernelCredentials: true, SelfUID: 7, GlobalRate: 1, GlobalBurst: 1}, 16)
	b := listener.NewBatch()
	send := func(f vlp.Frame) {
		fill(b, []vlp.Frame{f}, 7)
		p.UnixBatch(b, 1, 1000, 0) // same instant: the bucket never refills
	}
	send(vlp.Frame{Pid: 100, Nonce: 1})                                                           // takes the only token
	send(vlp.Frame{Pid: 100, Nonce: 2})                                                           // bucket empty: refused
	send(vlp.Frame{Pid: 100, Status: vlp.StatusCritical, Nonce: vlp.NonceTerminal, Timestamp: 5}) // the gasp: accepted
	send(vlp.Frame{Pid: 100, Status: vlp.StatusCritical, Nonce: vlp.NonceTerminal, Timestamp: 6}) // not the first: refused
	send(vlp.Frame{Pid: 200, Status: vlp.StatusCritical, Nonce: vlp.NonceTerminal, Timestamp: 1}) // unknown pid: refused
	var nonces []uint64
	for _, e := range *ev {
		if e.Kind == events.KindBeat {
			nonces = append(nonces, e.Nonce)
		}
	}
	if len(nonces) != 2 || nonces[0] != 1 || nonces[1] != vlp.NonceTerminal {
		t.Fatalf("accepted %v", nonces)
	}
	if got := c.RateLimited[stats.RateLimitGlobal].Load(); got != 3 {
		t.Fatalf("global drops %d, want 3", got)
	}
}

// lockProbe is a Resolver that checks, on every read, that the tracker
// lock is free (another goroutine can take it within a second).
type lockProbe struct {
	t     *testing.T
	tr    *tracker.Tracker
	reads int
}

func (l *lockProbe) Identity(pid uint32) (procfs.Identity, error) {
	l.reads++
	done := make(chan struct{})
	go func() { l.tr.Lookup(pid); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		l.t.Error("identity read with the tracker lock held")
	}
	return procfs.Identity{NSInode: 1, Generation: 42}, nil
}

// TestIdentityReadOutsideLock: a new kernel-attested agent whose first
// frames arrive in one batch is identified once, without the tracker lock,
// and its frames are still taken in order (interleaved with a known agent).
func TestIdentityReadOutsideLock(t *testing.T) {
	c := stats.New()
	probe := &lockProbe{t: t}
	tr, err := tracker.New(tracker.Options{Capacity: 16, Threshold: 1e9, Resolver: probe, SelfNS: 1}, c)
	if err != nil {
		t.Fatal(err)
	}
	probe.tr = tr
	ev := &collect{}
	p := New(Options{KernelCredentials: true, SelfUID: 7}, tr, c, ev, nil)
	b := listener.NewBatch()
	fill(b, []vlp.Frame{{Pid: 100, Nonce: 1}}, 7)
	p.UnixBatch(b, 1, 1, 0)
	*ev = (*ev)[:0]
	fill(b, []vlp.Frame{{Pid: 200, Nonce: 1}, {Pid: 100, Nonce: 2}, {Pid: 200, Nonce: 2}, {Pid: 200, Nonce: 3}}, 7)
	p.UnixBatch(b, 4, 2, 0)
	if probe.reads != 2 {
		t.Fatalf("%d identity reads, want 2 (one per new agent)", probe.reads)
	}
	var got []string
	for _, e := range *ev {
		got = append(got, fmt.Sprintf("%d/%d", e.Pid, e.Nonce))
	}
	if fmt.Sprint(got) != "[100/2 200/1 200/2 200/3]" {
		t.Fatalf("beats %v", got)
	}
	if s, _ := tr.Lookup(200); s.Generation != 42 || s.LastNonce != 3 || s.Origin != vlp.OriginKernelAttested {
		t.Fatalf("%+v", s)
	}
}
