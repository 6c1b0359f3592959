package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/varta-go/varta/cmd/varta-watch/internal/metrics"
	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/pkg/vlp"
)

// tableSource is a lock-free fixed table, like the tracker's iteration.
type tableSource []metrics.AgentView

func (s tableSource) EachAgent(fn func(metrics.AgentView)) {
	for _, a := range s {
		fn(a)
	}
}
func (s tableSource) Tracked() int  { return len(s) }
func (s tableSource) Capacity() int { return len(s) }

func bigTable(n int) tableSource {
	s := make(tableSource, n)
	for i := range s {
		s[i] = metrics.AgentView{
			Pid:     uint32(1000 + i),
			Beats:   uint64(i) * 17,
			Stalls:  uint64(i % 3),
			Status:  vlp.Status(i % 4),
			Payload: uint32(i),
		}
	}
	return s
}

// BenchmarkScrape65536 measures one scrape of a 65,536-agent table:
// "gather" is Registry.Gather (what the collectors cost, per-pid families
// materialised as protobuf objects), "http" a full request through the
// server's handler with the text encoding Prometheus negotiates, which
// streams the per-pid families, "http-gzip" the same compressed and
// "http-protobuf" the delimited protobuf format (streamed too).
// B/agent is the memory allocated per scrape divided by 65,536. "const-reference" gathers the same per-pid families the
// generic way (MustNewConstMetric on a plain prometheus.Registry), the
// design the fast path replaced. Run:
//
//	go test -run '^$' -bench Scrape65536 -benchmem -benchtime 20x ./internal/metrics/
func BenchmarkScrape65536(b *testing.B) {
	const n = 65536
	src := bigTable(n)
	for _, perPid := range []bool{true, false} {
		name := "perpid"
		if !perPid {
			name = "aggregate"
		}
		c := stats.New()
		reg := metrics.NewRegistry(c, src, metrics.Options{PerPid: perPid, Start: time.Now()})
		b.Run(name+"/gather", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				mfs, err := reg.Gather()
				if err != nil {
					b.Fatal(err)
				}
				if len(mfs) == 0 {
					b.Fatal("nothing gathered")
				}
			}
		})
		if perPid {
			b.Run("perpid/const-reference/gather", func(b *testing.B) {
				ref := prometheus.NewRegistry()
				ref.MustRegister(referenceCollector{src})
				b.ReportAllocs()
				for b.Loop() {
					if _, err := ref.Gather(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		for _, v := range []struct{ name, accept, encoding string }{
			{"http", string(expfmt.NewFormat(expfmt.TypeTextPlain)), ""},
			{"http-gzip", string(expfmt.NewFormat(expfmt.TypeTextPlain)), "gzip"},
			{"http-protobuf", string(expfmt.NewFormat(expfmt.TypeProtoDelim)), ""},
		} {
			b.Run(name+"/"+v.name, func(b *testing.B) {
				s, err := metrics.NewServer(metrics.ServerOptions{Addr: "127.0.0.1:0", TokenFile: writeToken(b)}, reg, c)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				req := httptest.NewRequest("GET", "/metrics", nil)
				req.Header.Set("Authorization", "Bearer "+testToken)
				req.Header.Set("Accept", v.accept)
				if v.encoding != "" {
					req.Header.Set("Accept-Encoding", v.encoding)
				}
				b.ReportAllocs()
				var size int64
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				for b.Loop() {
					w := &countingWriter{header: http.Header{}}
					s.ServeHTTP(w, req)
					if w.status != 0 && w.status != http.StatusOK {
						b.Fatalf("status %d", w.status)
					}
					size = w.n
				}
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(size), "bytes/scrape")
				b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/n, "B/agent")
			})
		}
	}
}

// countingWriter is a ResponseWriter that discards the body.
type countingWriter struct {
	header http.Header
	status int
	n      int64
}

func (w *countingWriter) Header() http.Header { return w.header }
func (w *countingWriter) WriteHeader(s int)   { w.status = s }
func (w *countingWriter) Write(p []byte) (int, error) {
	n, err := io.Discard.Write(p)
	w.n += int64(n)
	return n, err
}
