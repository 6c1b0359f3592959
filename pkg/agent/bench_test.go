package agent_test

import (
	"testing"

	"github.com/varta-go/varta/pkg/agent"
	"github.com/varta-go/varta/pkg/vlp"
)

// BenchmarkBeat measures one Beat per iteration against a receiver that
// drains in a goroutine. Drops (a full queue when the drain falls behind)
// cost the same syscall and are included.
func BenchmarkBeat(b *testing.B) {
	for _, tr := range benchTransports(b) {
		b.Run(tr.name, func(b *testing.B) {
			r, o := tr.open(b)
			a, err := agent.Connect(o)
			if err != nil {
				b.Fatal(err)
			}
			defer a.Close()
			stop := drain(r)
			defer stop()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				a.Beat(vlp.StatusOk, 1)
			}
			b.StopTimer()
			s := a.Stats()
			b.ReportMetric(float64(s.TotalDropped())/float64(s.Sent+s.TotalDropped()), "drop-ratio")
		})
	}
}

// BenchmarkBeatParallel measures contended Beat calls from GOMAXPROCS
// goroutines sharing one Agent.
func BenchmarkBeatParallel(b *testing.B) {
	p := sockPath(b)
	r := listenUnix(b, p)
	a, err := agent.DialUnix(p)
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	stop := drain(r)
	defer stop()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			a.Beat(vlp.StatusOk, 1)
		}
	})
}
