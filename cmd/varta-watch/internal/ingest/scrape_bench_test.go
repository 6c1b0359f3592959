package ingest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/listener"
	"github.com/varta-go/varta/cmd/varta-watch/internal/metrics"
	"github.com/varta-go/varta/pkg/vlp"
)

// BenchmarkUnixBatchDuringScrape runs the ingest pipeline for 65,536
// agents while another goroutine scrapes the full per-pid registry in a
// loop. Scrapes read the tracker without its lock, so ingest never waits
// for one; what remains is the competition for the CPU (2 cores here).
// Compare with BenchmarkUnixBatch/agents=65536.
func BenchmarkUnixBatchDuringScrape(b *testing.B) {
	const n = 65536
	p, c, _ := newPipe(b, Options{KernelCredentials: true, SelfUID: 7, GlobalRate: 1e9, GlobalBurst: 1e9}, n)
	p.emit = nopEmitter{}
	frames := make([]vlp.Frame, n)
	for i := range frames {
		frames[i] = vlp.Frame{Pid: uint32(i + 2), Nonce: 1}
	}
	batch := listener.NewBatch()
	now := int64(1)
	for i := 0; i < n; i += listener.BatchSize {
		k := min(listener.BatchSize, n-i)
		fill(batch, frames[i:i+k], 7)
		p.UnixBatch(batch, k, now)
	}
	reg := metrics.NewRegistry(c, metrics.FromTracker(p.tr), metrics.Options{PerPid: true, Start: time.Now()})
	var stop atomic.Bool
	var scrapes atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			if _, err := reg.Gather(); err != nil {
				b.Error(err)
				return
			}
			scrapes.Add(1)
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		for j := 0; j < listener.BatchSize; j++ {
			frames[i+j].Nonce++
		}
		fill(batch, frames[i:i+listener.BatchSize], 7)
		now += 1000
		p.UnixBatch(batch, listener.BatchSize, now)
		i = (i + listener.BatchSize) % n
	}
	b.StopTimer()
	stop.Store(true)
	wg.Wait()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*listener.BatchSize), "ns/datagram")
	b.ReportMetric(float64(scrapes.Load()), "scrapes")
}
