package metrics

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// scrapeHandler serves the exposition. Its responses are byte for byte
// those of promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: errLog,
// ErrorHandling: promhttp.ContinueOnError, Registry: reg,
// MaxRequestsInFlight: maxInFlight}), which served the endpoint before:
// same content-type and content-encoding negotiation (identity and gzip),
// Vary headers, name[] filter, error counter
// (promhttp_metric_handler_errors_total), log lines and 503 at the
// in-flight limit. The difference is memory: in the text format and the
// delimited protobuf format the per-pid families are written straight
// from a sorted snapshot of the table (about 40 bytes per agent) instead
// of being built as protobuf objects first (about 1.7 KB per agent); see
// stream.go and docs/benchmarks.md, "Scrape memory". The protobuf text
// formats (debugging aids no scraper negotiates) still materialise them.
type scrapeHandler struct {
	reg      *Registry
	errLog   *log.Logger
	errCnt   *prometheus.CounterVec
	inFlight chan struct{}
}

// offeredCompressions are the content encodings promhttp offers when the
// program does not link its zstd package (varta-watch does not).
var offeredCompressions = []string{"identity", "gzip"}

var gzipPool = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

// streamChunk is the size of the buffer the per-pid lines are formatted
// into before each write to the response.
const streamChunk = 32 << 10

func newScrapeHandler(reg *Registry, errLog *log.Logger) *scrapeHandler {
	errCnt := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "promhttp_metric_handler_errors_total",
		Help: "Total number of internal errors encountered by the promhttp metric handler.",
	}, []string{"cause"})
	errCnt.WithLabelValues("gathering")
	errCnt.WithLabelValues("encoding")
	if err := reg.Register(errCnt); err != nil {
		// Only a second handler on the same registry gets here; it
		// shares the first one's counter, as promhttp does.
		are := &prometheus.AlreadyRegisteredError{}
		if !errors.As(err, are) {
			panic(err)
		}
		errCnt = are.ExistingCollector.(*prometheus.CounterVec)
	}
	return &scrapeHandler{reg: reg, errLog: errLog, errCnt: errCnt, inFlight: make(chan struct{}, maxInFlight)}
}

// scrapeItem is one family of a response: mf, or per-pid family k of the
// snapshot when mf is nil.
type scrapeItem struct {
	name string
	mf   *dto.MetricFamily
	k    int
}

func (h *scrapeHandler) ServeHTTP(rsp http.ResponseWriter, req *http.Request) {
	select {
	case h.inFlight <- struct{}{}:
		defer func() { <-h.inFlight }()
	default:
		http.Error(rsp, fmt.Sprintf("Limit of concurrent requests reached (%d), try again later.", maxInFlight),
			http.StatusServiceUnavailable)
		return
	}
	format := expfmt.NegotiateAccept(req.Header, expfmt.DefaultAcceptedFormats()...)
	streamers, stream := newStreamers(format)
	mfs, rows, err := h.reg.gatherScrape(stream)
	if err != nil {
		h.errLog.Println("error gathering metrics:", err)
		h.errCnt.WithLabelValues("gathering").Inc()
		if len(mfs) == 0 && len(rows) == 0 {
			rsp.Header().Del("Content-Encoding")
			http.Error(rsp, "An error has occurred while serving metrics:\n\n"+err.Error(), http.StatusInternalServerError)
			return
		}
	}

	rsp.Header().Add("Vary", "Accept")
	rsp.Header().Add("Vary", "Accept-Encoding")
	rsp.Header().Set("Content-Type", string(format))
	var w io.Writer = rsp
	switch enc := negotiateContentEncoding(req, offeredCompressions); enc {
	case "gzip":
		gz := gzipPool.Get().(*gzip.Writer)
		gz.Reset(rsp)
		defer func() { _ = gz.Close(); gzipPool.Put(gz) }()
		w = gz
		rsp.Header().Set("Content-Encoding", enc)
	case "identity":
	default:
		h.errLog.Println("error getting writer", fmt.Errorf("content compression format not recognized: %s. Valid formats are: %s", enc, offeredCompressions))
	}

	items := make([]scrapeItem, 0, len(mfs)+len(perPidFams))
	for _, mf := range mfs {
		items = append(items, scrapeItem{name: mf.GetName(), mf: mf})
	}
	if len(rows) > 0 {
		for k, f := range perPidFams {
			items = append(items, scrapeItem{name: f.name, k: k})
		}
		slices.SortFunc(items, func(a, b scrapeItem) int { return strings.Compare(a.name, b.name) })
	}
	var filter map[string]struct{}
	if req.URL != nil {
		if names := req.URL.Query()["name[]"]; len(names) > 0 {
			filter = make(map[string]struct{}, len(names))
			for _, n := range names {
				filter[n] = struct{}{}
			}
		}
	}

	enc := expfmt.NewEncoder(w, format)
	var buf []byte
	for _, it := range items {
		if filter != nil {
			if _, ok := filter[it.name]; !ok {
				continue
			}
		}
		if it.mf != nil {
			err = enc.Encode(it.mf)
		} else {
			if buf == nil {
				buf = make([]byte, 0, streamChunk+256)
			}
			buf, err = streamers[it.k].write(w, rows, it.k, buf)
		}
		if err != nil {
			// ContinueOnError: log, count, go on with the next family.
			h.errLog.Println("error encoding and sending metric family:", err)
			h.errCnt.WithLabelValues("encoding").Inc()
		}
	}
	if closer, ok := enc.(expfmt.Closer); ok {
		if err := closer.Close(); err != nil {
			h.errLog.Println("error encoding and sending metric family:", err)
			h.errCnt.WithLabelValues("encoding").Inc()
		}
	}
}
