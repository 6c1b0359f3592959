package events

import (
	"path/filepath"
	"testing"

	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/pkg/vlp"
)

// BenchmarkEmitBeat is the cost the receive path pays per beat.
func BenchmarkEmitBeat(b *testing.B) {
	c := &stats.Counters{}
	w, err := Open(Options{Path: filepath.Join(b.TempDir(), "events")}, c)
	if err != nil {
		b.Fatal(err)
	}
	ev := Event{Kind: KindBeat, Ns: 1, Pid: 4242, Nonce: 1, Status: vlp.StatusOk}
	b.ReportAllocs()
	for b.Loop() {
		ev.Nonce++
		ev.Ns += 1000
		w.Emit(ev)
	}
	b.StopTimer()
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(c.ExportDropped.Load())/float64(b.N), "dropped/op")
}

// BenchmarkEmitBeatParallel emits from GOMAXPROCS goroutines at once, as
// several listeners would.
func BenchmarkEmitBeatParallel(b *testing.B) {
	c := &stats.Counters{}
	w, err := Open(Options{Path: filepath.Join(b.TempDir(), "events")}, c)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ev := Event{Kind: KindBeat, Ns: 1, Pid: 4242, Nonce: 1, Status: vlp.StatusOk}
		for pb.Next() {
			ev.Nonce++
			w.Emit(ev)
		}
	})
	b.StopTimer()
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(c.ExportDropped.Load())/float64(b.N), "dropped/op")
}

// BenchmarkWriteBeatLine is the writer goroutine's cost per line: format,
// buffer and write(2) to a real file in 60 kB chunks.
func BenchmarkWriteBeatLine(b *testing.B) {
	w, err := open(Options{Path: filepath.Join(b.TempDir(), "events")}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ev := Event{Kind: KindBeat, Ns: 1_700_000_000_000, Pid: 4242, Nonce: 1, Status: vlp.StatusOk, Payload: 12}
	b.ReportAllocs()
	b.SetBytes(int64(len(appendLine(nil, &ev))))
	for b.Loop() {
		ev.Nonce++
		w.writeEvent(&ev)
	}
	b.StopTimer()
	w.finish()
}

func BenchmarkAppendLine(b *testing.B) {
	buf := make([]byte, 0, 256)
	ev := Event{Kind: KindIO, Ns: 1_700_000_000_000, Text: "recvmsg: missing SCM_CREDENTIALS\tfrom peer"}
	b.ReportAllocs()
	for b.Loop() {
		buf = appendLine(buf[:0], &ev)
	}
}
