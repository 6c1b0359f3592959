package ingest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/metrics"
)

// BenchmarkUnixBatchDuringScrape runs the ingest pipeline for 65,536
// agents while another goroutine scrapes the full per-pid registry in a
// loop. Scrapes read the tracker without its lock, so ingest never waits
// for one; what remains is the competition for the CPU (2 cores here).
// Compare with BenchmarkUnixBatch/agents=65536.
func BenchmarkUnixBatchDuringScrape(b *testing.B) {
	f := newFleet(b, 65536)
	reg := metrics.NewRegistry(f.c, metrics.FromTracker(f.p.tr), metrics.Options{PerPid: true, Start: time.Now()})
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
	datagrams := 0
	for b.Loop() {
		datagrams += f.step()
	}
	b.StopTimer()
	stop.Store(true)
	wg.Wait()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(datagrams), "ns/datagram")
	b.ReportMetric(float64(scrapes.Load()), "scrapes")
}
