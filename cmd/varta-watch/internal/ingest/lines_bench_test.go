package ingest

import (
	"testing"

	"github.com/varta-go/varta/cmd/varta-watch/internal/events"
)

// BenchmarkAnomalyLineFlood: the events-file line of a refused datagram
// under a flood of one per microsecond (stall clock), nearly all over the
// per-kind rate limit: the cost the limiter adds to every refusal.
func BenchmarkAnomalyLineFlood(b *testing.B) {
	p, _, _ := newPipe(b, Options{}, 16)
	ev := events.Event{Kind: events.KindDecode, Text: "BadCrc"}
	b.ReportAllocs()
	for i := range b.N {
		ev.Ns = uint64(1e9 + int64(i)*1000)
		p.anomaly(ev)
	}
}
