package ingest

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/varta-go/varta/cmd/varta-watch/internal/export"
	"github.com/varta-go/varta/cmd/varta-watch/internal/listener"
	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/cmd/varta-watch/internal/tracker"
	"github.com/varta-go/varta/pkg/vlp"
)

type collect []export.Event

func (c *collect) Emit(e export.Event) { *c = append(*c, e) }

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
		kind    export.Kind
	}{
		{"accepted", Options{KernelCredentials: true, SelfUID: 7}, nil, 1, nil, export.KindBeat},
		{"foreign uid", Options{KernelCredentials: true, SelfUID: 7}, func(d *listener.Datagram) { d.Uid = 8 }, 0,
			func(c *stats.Counters) uint64 { return c.FrameUIDRefused.Load() }, 0},
		{"allowed uid", Options{KernelCredentials: true, SelfUID: 7, AllowUIDs: []uint32{8}}, func(d *listener.Datagram) { d.Uid = 8 }, 1, nil, export.KindBeat},
		{"allowed gid", Options{KernelCredentials: true, SelfUID: 7, AllowGIDs: []uint32{50}}, func(d *listener.Datagram) { d.Uid, d.Gid = 8, 50 }, 1, nil, export.KindBeat},
		{"no credentials", Options{KernelCredentials: true, SelfUID: 7}, func(d *listener.Datagram) { d.HasCreds = false }, 0,
			func(c *stats.Counters) uint64 { return c.IOErrors.Load() }, export.KindIO},
		{"control truncated", Options{KernelCredentials: true, SelfUID: 7}, func(d *listener.Datagram) { d.CtrlTruncated = true }, 0,
			func(c *stats.Counters) uint64 { return c.CtrlTruncated.Load() }, export.KindCtrunc},
		{"pid spoofed", Options{KernelCredentials: true, SelfUID: 7}, func(d *listener.Datagram) { d.Pid++ }, 0,
			func(c *stats.Counters) uint64 { return c.FrameAuthFailures.Load() }, export.KindMismatch},
		{"short", Options{KernelCredentials: true, SelfUID: 7}, func(d *listener.Datagram) { d.Len, d.Data = 31, d.Data[:31] }, 0,
			func(c *stats.Counters) uint64 { return c.TruncatedDatagrams.Load() }, 0},
		{"bad crc", Options{KernelCredentials: true, SelfUID: 7}, func(d *listener.Datagram) { d.Data[30] ^= 1 }, 0,
			func(c *stats.Counters) uint64 { return c.DecodeErrors[vlp.KindBadCrc].Load() }, export.KindDecode},
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
			p.UnixBatch(b, 1, 1000)
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
	p, c, _ := newPipe(t, Options{GlobalRate: 10, GlobalBurst: 2}, 16)
	ok := 0
	for i := 0; i < 5; i++ {
		if p.TakeToken(1) {
			ok++
		}
	}
	if ok != 2 || c.RateLimited[stats.RateLimitGlobal].Load() != 3 {
		t.Fatalf("burst admitted %d", ok)
	}
	if !p.TakeToken(1 + 100e6) { // 100 ms later: one token at 10/s
		t.Fatal("bucket did not refill")
	}
	if p.TakeToken(1 + 100e6) {
		t.Fatal("bucket over-refilled")
	}
}

func TestPidMax(t *testing.T) {
	p, c, _ := newPipe(t, Options{PidMax: 32768}, 16)
	f := vlp.Frame{Pid: 32768, Nonce: 1}
	w := f.Marshal()
	p.tr.Lock()
	p.Plain(w[:], vlp.OriginNetworkUnverified, 1)
	f.Pid = 32767
	w = f.Marshal()
	p.Plain(w[:], vlp.OriginNetworkUnverified, 1)
	p.tr.Unlock()
	if c.FrameRejectedPidAboveMax.Load() != 1 || p.tr.Tracked() != 1 {
		t.Fatalf("rejected %d tracked %d", c.FrameRejectedPidAboveMax.Load(), p.tr.Tracked())
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
		p.UnixBatch(f.batch, k, f.now)
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
	f.p.UnixBatch(f.batch, k, f.now)
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
	tr.Lock()
	for i := 0; i < n; i++ {
		tr.Observe(&vlp.Frame{Pid: uint32(i + 2), Nonce: 1}, vlp.OriginNetworkUnverified, int64(i))
	}
	tr.Unlock()
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
		p.UnixBatch(b, 1, 1000) // same instant: the bucket never refills
	}
	send(vlp.Frame{Pid: 100, Nonce: 1})                                                           // takes the only token
	send(vlp.Frame{Pid: 100, Nonce: 2})                                                           // bucket empty: refused
	send(vlp.Frame{Pid: 100, Status: vlp.StatusCritical, Nonce: vlp.NonceTerminal, Timestamp: 5}) // the gasp: accepted
	send(vlp.Frame{Pid: 100, Status: vlp.StatusCritical, Nonce: vlp.NonceTerminal, Timestamp: 6}) // not the first: refused
	send(vlp.Frame{Pid: 200, Status: vlp.StatusCritical, Nonce: vlp.NonceTerminal, Timestamp: 1}) // unknown pid: refused
	var nonces []uint64
	for _, e := range *ev {
		if e.Kind == export.KindBeat {
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
