package metrics

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"slices"
	"strconv"
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
// in-flight limit. The difference is memory: in the text formats the
// per-pid families are written straight from a sorted snapshot of the
// table (about 40 bytes per agent) instead of being built as protobuf
// objects first (about 1.7 KB per agent); see docs/benchmarks.md, "Scrape
// memory". The protobuf formats, which no Prometheus asks for unless
// native histograms are on, still materialise them.
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
	var templates [len(perPidFams)]lineTemplate
	stream := format.FormatType() == expfmt.TypeTextPlain
	if stream {
		for k, f := range perPidFams {
			if templates[k], stream = newLineTemplate(format, f); !stream {
				break
			}
		}
	}
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
			buf, err = templates[it.k].write(w, rows, it.k, buf)
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

// lineTemplate is how the negotiated encoder writes one per-pid family:
// header (HELP and TYPE lines), then per pid prefix, the pid, infix, the
// value and a newline.
type lineTemplate struct {
	header, prefix, infix []byte
}

// templatePid is the label value of the sample family newLineTemplate
// encodes; its value is templateValue.
const (
	templatePid   = "4294967295"
	templateValue = 1234.5
)

// newLineTemplate encodes a one-series family f in format with the real
// encoder and cuts its output into a template. It reports false when the
// output does not have the shape the template assumes (one HELP, one
// TYPE and one sample line ending in `pid="<pid>"} <value>`), and the
// caller then materialises the families instead.
func newLineTemplate(format expfmt.Format, f familyMeta) (lineTemplate, bool) {
	var out bytes.Buffer
	pidName, pid, v := "pid", templatePid, templateValue
	m := &dto.Metric{Label: []*dto.LabelPair{{Name: &pidName, Value: &pid}}}
	if f.typ == dto.MetricType_COUNTER {
		m.Counter = &dto.Counter{Value: &v}
	} else {
		m.Gauge = &dto.Gauge{Value: &v}
	}
	if err := expfmt.NewEncoder(&out, format).Encode(f.family([]*dto.Metric{m})); err != nil {
		return lineTemplate{}, false
	}
	text := out.Bytes()
	nl := bytes.LastIndexByte(text[:max(0, len(text)-1)], '\n')
	if nl < 0 || bytes.Count(text, []byte("\n")) != 3 {
		return lineTemplate{}, false
	}
	header, sample := text[:nl+1], text[nl+1:]
	want := fmt.Sprintf(`{pid="%s"} %s`+"\n", templatePid, strconv.FormatFloat(templateValue, 'g', -1, 64))
	if string(sample) != f.name+want {
		return lineTemplate{}, false
	}
	return lineTemplate{
		header: header,
		prefix: []byte(f.name + `{pid="`),
		infix:  []byte(`"} `),
	}, true
}

// write writes per-pid family k of rows to w through buf, which it returns
// for reuse. Values are formatted as the text encoder formats them
// (strconv 'g', shortest; the encoder's special cases 0, 1, -1, NaN and
// ±Inf give the same bytes or cannot occur for unsigned counts).
func (t lineTemplate) write(w io.Writer, rows []pidRow, k int, buf []byte) ([]byte, error) {
	buf = append(buf[:0], t.header...)
	for i := range rows {
		buf = append(buf, t.prefix...)
		buf = strconv.AppendUint(buf, uint64(rows[i].pid), 10)
		buf = append(buf, t.infix...)
		buf = strconv.AppendFloat(buf, rows[i].value(k), 'g', -1, 64)
		buf = append(buf, '\n')
		if len(buf) >= streamChunk {
			if _, err := w.Write(buf); err != nil {
				return buf[:0], err
			}
			buf = buf[:0]
		}
	}
	if len(buf) > 0 {
		if _, err := w.Write(buf); err != nil {
			return buf[:0], err
		}
	}
	return buf[:0], nil
}
