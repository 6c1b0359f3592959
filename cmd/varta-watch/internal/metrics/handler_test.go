package metrics_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"

	"github.com/varta-go/varta/cmd/varta-watch/internal/metrics"
	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/pkg/vlp"
)

// scrapeTable is a table with pids of every length from 1 to 7 digits
// (so label order differs from numeric order), values that the text
// encoder formats specially (0, 1) or in exponent form (>= 1e21 and
// 2^53+), and one pid listed twice.
func scrapeTable(n int) []metrics.AgentView {
	rng := rand.New(rand.NewPCG(7, 11))
	agents := []metrics.AgentView{
		{Pid: 1, Beats: 1, Status: vlp.StatusOk, Payload: 0},
		{Pid: 9, Beats: 0, Stalls: 1, Status: vlp.StatusStall, Payload: 1},
		{Pid: 10, Beats: 1 << 62, Status: vlp.StatusCritical, Payload: 4294967295},
		{Pid: 4194304, Beats: 1<<53 + 1, Status: vlp.StatusDegraded, Payload: 1e6},
		{Pid: 4294967295, Beats: 123456789, Payload: 100000},
		{Pid: 9, Beats: 0, Stalls: 1, Status: vlp.StatusStall, Payload: 1},
	}
	seen := map[uint32]bool{1: true, 9: true, 10: true, 4194304: true, 4294967295: true}
	for len(agents) < n {
		pid := rng.Uint32N(4_194_304) + 2
		if rng.IntN(4) == 0 {
			pid = rng.Uint32N(1000) + 2
		}
		if seen[pid] {
			continue
		}
		seen[pid] = true
		agents = append(agents, metrics.AgentView{
			Pid: pid, Beats: rng.Uint64N(1 << uint(rng.IntN(63)+1)), Stalls: rng.Uint64N(3),
			Status: vlp.Status(rng.IntN(4)), Payload: rng.Uint32(),
		})
	}
	return agents
}

// volatile reports whether a family's values change from one scrape to the
// next on their own (Go runtime and process collectors).
func volatile(name string) bool {
	return strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_")
}

// textFamilies splits a text exposition into its families.
func textFamilies(t *testing.T, body []byte) (names []string, kept []byte) {
	t.Helper()
	for len(body) > 0 {
		if !bytes.HasPrefix(body, []byte("# HELP ")) {
			t.Fatalf("family does not start with HELP: %.200q", body)
		}
		end := bytes.Index(body, []byte("\n# HELP "))
		if end < 0 {
			end = len(body)
		} else {
			end++
		}
		fam := body[:end]
		body = body[end:]
		name, _, _ := strings.Cut(string(fam[len("# HELP "):]), " ")
		names = append(names, name)
		if !volatile(name) {
			kept = append(kept, fam...)
		}
	}
	return names, kept
}

// protoFamilies splits a length-delimited protobuf exposition into its
// messages.
func protoFamilies(t *testing.T, body []byte) (names []string, kept []byte) {
	t.Helper()
	for len(body) > 0 {
		size, n := binary.Uvarint(body)
		if n <= 0 || uint64(len(body)-n) < size {
			t.Fatalf("bad delimited message at %d bytes from the end", len(body))
		}
		msg := body[:n+int(size)]
		var mf dto.MetricFamily
		if err := proto.Unmarshal(msg[n:], &mf); err != nil {
			t.Fatal(err)
		}
		body = body[len(msg):]
		names = append(names, mf.GetName())
		if !volatile(mf.GetName()) {
			kept = append(kept, msg...)
		}
	}
	return names, kept
}

// TestScrapeMatchesPromhttp serves the same registry through the
// endpoint and through promhttp.HandlerFor with the options the endpoint
// used before it streamed the per-pid families, for every Accept header
// (plain and gzip, with and without name[] filters) and every
// Accept-Encoding header, and requires the same status,
// headers and body bytes (decompressed, and without the Go runtime and
// process families, whose values move between two scrapes; their names
// and order must still match).
func TestScrapeMatchesPromhttp(t *testing.T) {
	c := stats.New()
	populate(c)
	src := &fakeSource{capacity: 4096}
	src.set(scrapeTable(400)...)
	reg := metrics.NewRegistry(c, src, fixedOptions(true))
	s, err := metrics.NewServer(metrics.ServerOptions{Addr: "127.0.0.1:0", TokenFile: writeToken(t)}, reg, c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ref := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            log.New(io.Discard, "", 0),
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            reg,
		MaxRequestsInFlight: 4,
	})

	accepts := []string{
		"",
		"text/plain",
		"text/plain;version=0.0.4",
		"text/plain;version=1.0.0;escaping=allow-utf-8",
		"text/plain;version=0.0.4;escaping=underscores",
		"text/plain;version=1.0.0;escaping=dots",
		"text/plain;version=1.0.0;escaping=values",
		// Prometheus 3's default scrape_protocols.
		"application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
		"application/openmetrics-text;version=1.0.0",
		"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3",
		"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=compact-text",
		"application/json",
		"*/*",
	}
	encodings := []string{"", "gzip", "identity", "gzip;q=0, identity", "*;q=0", "deflate", "zstd", "gzip;q=0.5, identity;q=0.6", "br, gzip", "GZIP", "gzip;q=0.x"}
	queries := []string{"", "?name[]=varta_beats_total&name[]=varta_agents&name[]=varta_status&name[]=nothing"}
	type combo struct{ accept, encoding, query string }
	var combos []combo
	for _, accept := range accepts {
		for _, encoding := range []string{"", "gzip"} {
			for _, query := range queries {
				combos = append(combos, combo{accept, encoding, query})
			}
		}
	}
	for _, encoding := range encodings {
		combos = append(combos, combo{"", encoding, ""}, combo{accepts[9], encoding, ""})
	}
	for _, cb := range combos {
		accept, encoding, query := cb.accept, cb.encoding, cb.query
		{
			{
				var got, want *httptest.ResponseRecorder
				for i, h := range []http.Handler{s, ref} {
					req := httptest.NewRequest(http.MethodGet, "/metrics"+query, nil)
					req.Header.Set("Authorization", "Bearer "+testToken)
					if accept != "" {
						req.Header.Set("Accept", accept)
					}
					if encoding != "" {
						req.Header.Set("Accept-Encoding", encoding)
					}
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if i == 0 {
						got = rec
					} else {
						want = rec
					}
				}
				compareResponses(t, accept+" | "+encoding+" | "+query, got, want)
			}
		}
	}
}

func compareResponses(t *testing.T, what string, got, want *httptest.ResponseRecorder) {
	t.Helper()
	if got.Code != want.Code {
		t.Fatalf("%s: status %d, promhttp %d", what, got.Code, want.Code)
	}
	for _, h := range []string{"Content-Type", "Content-Encoding", "Vary", "Content-Length"} {
		if g, w := got.Header().Values(h), want.Header().Values(h); !slices.Equal(g, w) {
			t.Fatalf("%s: %s %q, promhttp %q", what, h, g, w)
		}
	}
	gb, wb := body(t, got), body(t, want)
	ct := want.Header().Get("Content-Type")
	switch expfmt.Format(ct).FormatType() {
	case expfmt.TypeTextPlain:
		gn, gk := textFamilies(t, gb)
		wn, wk := textFamilies(t, wb)
		if !slices.Equal(gn, wn) {
			t.Fatalf("%s: families\n%q\npromhttp\n%q", what, gn, wn)
		}
		if !bytes.Equal(gk, wk) {
			t.Fatalf("%s: exposition differs from promhttp's:\n%s", what, firstDiff(gk, wk))
		}
	case expfmt.TypeProtoDelim:
		gn, gk := protoFamilies(t, gb)
		wn, wk := protoFamilies(t, wb)
		if !slices.Equal(gn, wn) || !bytes.Equal(gk, wk) {
			t.Fatalf("%s: protobuf exposition differs from promhttp's (families %q, promhttp %q)", what, gn, wn)
		}
	default:
		// The protobuf text formats: every family starts with a line
		// "name: ..." at the top level.
		g, w := protoTextFamilies(gb), protoTextFamilies(wb)
		if !slices.Equal(g, w) {
			t.Fatalf("%s (%s): body differs from promhttp's", what, ct)
		}
		if got.Code == http.StatusOK && !strings.Contains(strings.Join(g, ""), "varta_") && !strings.Contains(what, "name[]") {
			t.Fatalf("%s (%s): no varta_ family found in the body", what, ct)
		}
	}
}

// protoTextFamilies splits a protobuf text exposition into families and
// drops the volatile ones.
func protoTextFamilies(body []byte) []string {
	var out []string
	var cur strings.Builder
	keep := true
	done := func() {
		if cur.Len() > 0 && keep {
			out = append(out, cur.String())
		}
		cur.Reset()
	}
	for _, l := range strings.SplitAfter(string(body), "\n") {
		if strings.HasPrefix(l, "name:") {
			done()
			v := strings.TrimSpace(strings.TrimPrefix(l, "name:"))
			name, _, _ := strings.Cut(strings.Trim(v, `"`), `"`)
			keep = !volatile(name)
		}
		cur.WriteString(l)
	}
	done()
	return out
}

func body(t *testing.T, rec *httptest.ResponseRecorder) []byte {
	t.Helper()
	if rec.Header().Get("Content-Encoding") != "gzip" {
		return rec.Body.Bytes()
	}
	zr, err := gzip.NewReader(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// firstDiff shows the first differing line of two texts.
func firstDiff(got, want []byte) string {
	gs := bufio.NewScanner(bytes.NewReader(got))
	ws := bufio.NewScanner(bytes.NewReader(want))
	for line := 1; ; line++ {
		g, w := gs.Scan(), ws.Scan()
		if !g && !w {
			return "(no line differs)"
		}
		if gs.Text() != ws.Text() || g != w {
			return "line " + strconv.Itoa(line) + ":\n got " + gs.Text() + "\nwant " + ws.Text()
		}
	}
}

// TestScrapeGolden checks the endpoint's own output, not the registry's:
// the text body for the documented families (docs/metrics.md) of the populated table, plain and
// gzip-compressed, is byte for byte testdata/populated.golden.
func TestScrapeGolden(t *testing.T) {
	c := stats.New()
	src := &fakeSource{capacity: 4096}
	src.set(populate(c)...)
	reg := metrics.NewRegistry(c, src, fixedOptions(true))
	s, err := metrics.NewServer(metrics.ServerOptions{Addr: "127.0.0.1:0", TokenFile: writeToken(t)}, reg, c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want, err := os.ReadFile(filepath.Join("testdata", "populated.golden"))
	if err != nil {
		t.Fatal(err)
	}
	query := "?name[]=" + strings.Join(specMetrics, "&name[]=")
	for _, encoding := range []string{"", "gzip"} {
		req := httptest.NewRequest(http.MethodGet, "/metrics"+query, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		if encoding != "" {
			req.Header.Set("Accept-Encoding", encoding)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("%q: status %d", encoding, rec.Code)
		}
		if got := rec.Header().Get("Content-Encoding"); got != encoding {
			t.Fatalf("Content-Encoding %q, want %q", got, encoding)
		}
		if got := body(t, rec); !bytes.Equal(got, want) {
			t.Fatalf("%q: body differs from populated.golden:\n%s", encoding, firstDiff(got, want))
		}
	}
}

// failingWriter is a ResponseWriter whose connection broke: every Write
// fails.
type failingWriter struct {
	header http.Header
	status int
	writes int
}

func (w *failingWriter) Header() http.Header { return w.header }
func (w *failingWriter) WriteHeader(s int)   { w.status = s }
func (w *failingWriter) Write(p []byte) (int, error) {
	w.writes++
	return 0, errors.New("connection reset")
}

// TestScrapeWriteErrorsCounted sends a scrape to a client that went away:
// every family fails, each failure is counted under cause="encoding" (one
// per family, streamed or not), and the log does not get one line per
// family.
func TestScrapeWriteErrorsCounted(t *testing.T) {
	c := stats.New()
	src := &fakeSource{capacity: 4096}
	src.set(scrapeTable(500)...)
	reg := metrics.NewRegistry(c, src, fixedOptions(true))
	var mu sync.Mutex
	var logged []string
	s, err := metrics.NewServer(metrics.ServerOptions{Addr: "127.0.0.1:0", TokenFile: writeToken(t),
		Logf: func(f string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			logged = append(logged, f)
		}}, reg, c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	w := &failingWriter{header: http.Header{}}
	s.ServeHTTP(w, req)
	if w.writes == 0 {
		t.Fatal("nothing written")
	}
	got := counterOf(t, reg, "encoding")
	// Every family of the registry failed, plus none other.
	if want := float64(len(mfs)); got != want {
		t.Fatalf("promhttp_metric_handler_errors_total{cause=\"encoding\"} = %v, want %v (one per family)", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	// Repeats within a second of a logged line are suppressed; a slow
	// (loaded, -race) run may log a second line, never one per family.
	if len(logged) == 0 || len(logged) > len(mfs)/4 {
		t.Fatalf("logged %d lines for %d failed families, want 1 (repeats suppressed)", len(logged), len(mfs))
	}
}

// counterOf gathers promhttp_metric_handler_errors_total{cause} from reg.
func counterOf(t *testing.T, reg *metrics.Registry, cause string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "promhttp_metric_handler_errors_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == cause {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no promhttp_metric_handler_errors_total{cause=%q}", cause)
	return 0
}

// TestScrapeInFlightLimit holds four scrapes in their response writers and
// checks that a fifth gets promhttp's 503.
func TestScrapeInFlightLimit(t *testing.T) {
	c := stats.New()
	src := &fakeSource{capacity: 16}
	src.set(scrapeTable(10)...)
	reg := metrics.NewRegistry(c, src, fixedOptions(true))
	s, err := metrics.NewServer(metrics.ServerOptions{Addr: "127.0.0.1:0", TokenFile: writeToken(t)}, reg, c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	release := make(chan struct{})
	var started, done sync.WaitGroup
	for range 4 {
		started.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			req.Header.Set("Authorization", "Bearer "+testToken)
			s.ServeHTTP(&blockingWriter{header: http.Header{}, started: &started, release: release}, req)
		}()
	}
	started.Wait()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	close(release)
	done.Wait()
	if rec.Code != http.StatusServiceUnavailable || rec.Body.String() != "Limit of concurrent requests reached (4), try again later.\n" {
		t.Fatalf("fifth scrape: %d %q", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape after the others finished: %d", rec.Code)
	}
}

// blockingWriter signals started on its first Write and blocks it until
// release is closed.
type blockingWriter struct {
	header  http.Header
	started *sync.WaitGroup
	release chan struct{}
	once    sync.Once
}

func (w *blockingWriter) Header() http.Header { return w.header }
func (w *blockingWriter) WriteHeader(int)     {}
func (w *blockingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() {
		w.started.Done()
		select {
		case <-w.release:
		case <-time.After(30 * time.Second):
		}
	})
	return len(p), nil
}

// FuzzScrapeNegotiation sends arbitrary Accept and Accept-Encoding headers
// (network input) to the endpoint and to promhttp.HandlerFor on the same
// registry: the handler must never panic and must answer exactly as
// promhttp (status, Content-Type, Content-Encoding, Vary and body).
func FuzzScrapeNegotiation(f *testing.F) {
	for _, s := range [][2]string{
		{"", ""}, {"text/plain;version=0.0.4", "gzip"}, {"*/*", "*;q=0"},
		{"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited", "gzip;q=0.5, identity;q=0.6"},
		{"application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,text/plain;q=0.4", "br, gzip"},
		{"text/plain;escaping=dots", "gzip;q=0."},
	} {
		f.Add(s[0], s[1])
	}
	c := stats.New()
	src := &fakeSource{capacity: 64}
	src.set(scrapeTable(20)...)
	reg := metrics.NewRegistry(c, src, fixedOptions(true))
	s, err := metrics.NewServer(metrics.ServerOptions{Addr: "127.0.0.1:0", TokenFile: writeToken(f)}, reg, c)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	ref := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: log.New(io.Discard, "", 0), ErrorHandling: promhttp.ContinueOnError, Registry: reg, MaxRequestsInFlight: 4,
	})
	f.Fuzz(func(t *testing.T, accept, encoding string) {
		var recs [2]*httptest.ResponseRecorder
		for i, h := range []http.Handler{s, ref} {
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			req.Header.Set("Authorization", "Bearer "+testToken)
			req.Header["Accept"] = []string{accept}
			req.Header["Accept-Encoding"] = []string{encoding}
			recs[i] = httptest.NewRecorder()
			h.ServeHTTP(recs[i], req)
		}
		compareResponses(t, accept+" | "+encoding, recs[0], recs[1])
	})
}
