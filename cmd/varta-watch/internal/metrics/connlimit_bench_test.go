package metrics

import (
	"net"
	"testing"

	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
)

// pipeListener hands out one end of a fresh net.Pipe per Accept.
type pipeListener struct{ net.Listener }

func (pipeListener) Accept() (net.Conn, error) {
	a, b := net.Pipe()
	b.Close()
	return a, nil
}

// BenchmarkConnLimiterAcceptAtLimit measures one Accept while every slot
// of a 64-slot limiter is held by an idle connection, so each Accept picks
// and evicts a victim: the per-connection cost of a flood of new
// connections.
func BenchmarkConnLimiterAcceptAtLimit(b *testing.B) {
	c := stats.New()
	l := newConnLimiter(pipeListener{}, DefaultMaxConnections, c)
	for range DefaultMaxConnections {
		if _, err := l.Accept(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := l.Accept(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if got := c.PromConnectionsDropped[stats.PromDropConnectionEvicted].Load(); got < uint64(b.N) {
		b.Fatalf("evictions %d, want >= %d", got, b.N)
	}
}

// BenchmarkPipeAccept is the baseline: the fake listener alone.
func BenchmarkPipeAccept(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		c, _ := pipeListener{}.Accept()
		c.Close()
	}
}
