package metrics_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/varta-go/varta/cmd/varta-watch/internal/metrics"
	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/pkg/vlp"
)

// startServer runs a metrics server on 127.0.0.1:0 over a fake table with
// pid 4242 and returns its base URL and the counters it bumps. Cleanup
// closes it and checks that Serve returned nil.
func startServer(t *testing.T, opts metrics.ServerOptions) (string, *stats.Counters) {
	t.Helper()
	c := stats.New()
	src := &fakeSource{capacity: 16}
	src.set(metrics.AgentView{Pid: 4242, Beats: 7, Status: vlp.StatusOk})
	reg := metrics.NewRegistry(c, src, metrics.Options{PerPid: true, Start: time.Now()})
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.TokenFile == "" {
		opts.TokenFile = writeToken(t)
	}
	s, err := metrics.NewServer(opts, reg, c)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after Close")
		}
	})
	return "http://" + s.Addr().String(), c
}

// newClient returns an HTTP client without keep-alive, so that no
// connection outlives a test.
func newClient() *http.Client {
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true},
	}
}

type response struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, client *http.Client, method, url string, header map[string][]string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, string(body)}
}

func bearer(v string) map[string][]string { return map[string][]string{"Authorization": {v}} }

// TestAuthMatrix exercises the endpoint over real HTTP, request by request
// in order, checking the status, the challenge header and the running
// count of authentication failures.
func TestAuthMatrix(t *testing.T) {
	base, c := startServer(t, metrics.ServerOptions{})
	client := newClient()
	tests := []struct {
		name         string
		method, path string
		header       map[string][]string
		wantStatus   int
		wantFailures uint64 // varta_prom_auth_failures_total after the request
	}{
		{"no header", "GET", "/metrics", nil, 401, 1},
		{"basic scheme", "GET", "/metrics", bearer("Basic " + testToken), 401, 2},
		{"wrong token", "GET", "/metrics", bearer("Bearer " + strings.Repeat("0", 64)), 401, 3},
		{"token one digit short", "GET", "/metrics", bearer("Bearer " + testToken[:63]), 401, 4},
		{"token one digit long", "GET", "/metrics", bearer("Bearer " + testToken + "0"), 401, 5},
		{"hex case differs", "GET", "/metrics", bearer("Bearer " + strings.ToLower(testToken)), 401, 6},
		{"scheme only", "GET", "/metrics", bearer("Bearer"), 401, 7},
		{"two headers", "GET", "/metrics", map[string][]string{"Authorization": {"Bearer " + testToken, "Bearer " + testToken}}, 401, 8},
		{"lower-case scheme", "GET", "/metrics", bearer("bearer " + testToken), 200, 8},
		{"correct", "GET", "/metrics", bearer("Bearer " + testToken), 200, 8},
		{"upper-case scheme", "GET", "/metrics", bearer("BEARER " + testToken), 200, 8},
		{"unknown path without token", "GET", "/other", nil, 404, 8},
		{"unknown path with token", "GET", "/other", bearer("Bearer " + testToken), 404, 8},
		{"trailing slash", "GET", "/metrics/", bearer("Bearer " + testToken), 404, 8},
		{"POST with token", "POST", "/metrics", bearer("Bearer " + testToken), 405, 8},
		{"HEAD with token", "HEAD", "/metrics", bearer("Bearer " + testToken), 405, 8},
		{"POST without token", "POST", "/metrics", nil, 401, 9},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, client, tc.method, base+tc.path, tc.header)
			if r.status != tc.wantStatus {
				t.Fatalf("status %d, want %d (body %q)", r.status, tc.wantStatus, r.body)
			}
			challenge := r.header.Get("WWW-Authenticate")
			if tc.wantStatus == 401 && challenge != `Bearer realm="varta"` {
				t.Errorf("WWW-Authenticate %q, want %q", challenge, `Bearer realm="varta"`)
			}
			if tc.wantStatus != 401 && challenge != "" {
				t.Errorf("unexpected WWW-Authenticate %q on %d", challenge, r.status)
			}
			if tc.wantStatus == 405 && r.header.Get("Allow") != "GET" {
				t.Errorf("Allow %q, want GET", r.header.Get("Allow"))
			}
			if tc.wantStatus == 200 && !strings.Contains(r.body, `varta_beats_total{pid="4242"} 7`) {
				t.Errorf("200 body lacks the pid's series:\n%.500s", r.body)
			}
			if tc.wantStatus != 200 && strings.Contains(r.body, "varta_") {
				t.Errorf("refused response leaks metrics: %.200q", r.body)
			}
			if got := c.PromAuthFailures.Load(); got != tc.wantFailures {
				t.Errorf("auth failures %d, want %d", got, tc.wantFailures)
			}
		})
	}
	if n := c.PromConnectionsDropped[stats.PromDropRateLimit].Load(); n != 0 {
		t.Errorf("rate-limit drops %d with the default options off", n)
	}
}

// TestScrapeReportsAuthFailures checks that the endpoint exports its own
// refusal counter.
func TestScrapeReportsAuthFailures(t *testing.T) {
	base, _ := startServer(t, metrics.ServerOptions{})
	client := newClient()
	for range 3 {
		do(t, client, "GET", base+"/metrics", bearer("Bearer nope"))
	}
	r := do(t, client, "GET", base+"/metrics", bearer("Bearer "+testToken))
	if !strings.Contains(r.body, "\nvarta_prom_auth_failures_total 3\n") {
		t.Fatalf("scrape lacks varta_prom_auth_failures_total 3:\n%s", r.body)
	}
}

// TestRateLimit sends burst+1 requests from one client faster than the
// bucket refills. A client without the token is refused the last one with
// 429 (counted, not also an authentication failure); a client with the
// right token is never charged, however many it sends.
func TestRateLimit(t *testing.T) {
	tests := []struct {
		name      string
		header    map[string][]string
		pass      int // status of requests within the burst
		last      int // status of request burst+1
		wantDrops uint64
	}{
		{"valid token", bearer("Bearer " + testToken), 200, 200, 0},
		{"no token", nil, 401, http.StatusTooManyRequests, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const burst = 3
			// 0.05/s: the bucket gains one token in 20 s, far longer
			// than this test runs.
			base, c := startServer(t, metrics.ServerOptions{RateLimitPerSec: 0.05, RateLimitBurst: burst})
			client := newClient()
			for i := range burst {
				if r := do(t, client, "GET", base+"/metrics", tc.header); r.status != tc.pass {
					t.Fatalf("request %d: status %d, want %d", i+1, r.status, tc.pass)
				}
			}
			r := do(t, client, "GET", base+"/metrics", tc.header)
			if r.status != tc.last {
				t.Fatalf("request %d: status %d, want %d", burst+1, r.status, tc.last)
			}
			if r.status == http.StatusTooManyRequests && r.header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			if got := c.PromConnectionsDropped[stats.PromDropRateLimit].Load(); got != tc.wantDrops {
				t.Errorf("rate_limit drops %d, want %d", got, tc.wantDrops)
			}
			if got := c.PromConnectionsDropped[stats.PromDropIPTableFull].Load(); got != 0 {
				t.Errorf("ip_table_full drops %d, want 0", got)
			}
			wantFailures := uint64(0)
			if tc.pass == 401 {
				wantFailures = burst // the refused request never reached authentication
			}
			if got := c.PromAuthFailures.Load(); got != wantFailures {
				t.Errorf("auth failures %d, want %d", got, wantFailures)
			}
		})
	}
}

// TestRateLimitOff checks that 0 in either option disables the limiter.
func TestRateLimitOff(t *testing.T) {
	for _, opts := range []metrics.ServerOptions{
		{RateLimitPerSec: 0, RateLimitBurst: 1},
		{RateLimitPerSec: 0.01, RateLimitBurst: 0},
	} {
		t.Run(fmt.Sprintf("rate=%v,burst=%d", opts.RateLimitPerSec, opts.RateLimitBurst), func(t *testing.T) {
			base, c := startServer(t, opts)
			client := newClient()
			for i := range 5 {
				if r := do(t, client, "GET", base+"/metrics", bearer("Bearer "+testToken)); r.status != 200 {
					t.Fatalf("request %d: status %d", i+1, r.status)
				}
			}
			if n := c.PromConnectionsDropped[stats.PromDropRateLimit].Load(); n != 0 {
				t.Fatalf("drops %d", n)
			}
		})
	}
}

// TestIPTableFull fills a one-entry table with a client that has no token:
// a second client without the token gets 503 (ip_table_full), a second
// client with the right token is served, and neither takes the first
// client's entry.
func TestIPTableFull(t *testing.T) {
	// Two loopback addresses are two clients. Linux routes all of
	// 127.0.0.0/8 to lo, so 127.0.0.2 can connect to 127.0.0.1.
	base, c := startServer(t, metrics.ServerOptions{RateLimitPerSec: 0.05, RateLimitBurst: 5, MaxClients: 1})
	first := newClient()
	if r := do(t, first, "GET", base+"/metrics", nil); r.status != 401 {
		t.Fatalf("first client: status %d, want 401", r.status)
	}
	second := clientFrom(t, "127.0.0.2")
	r := do(t, second, "GET", base+"/metrics", bearer("Bearer nope"))
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("second client without the token: status %d, want 503", r.status)
	}
	if got := c.PromConnectionsDropped[stats.PromDropIPTableFull].Load(); got != 1 {
		t.Errorf("ip_table_full drops %d, want 1", got)
	}
	for i := range 3 {
		if r := do(t, second, "GET", base+"/metrics", bearer("Bearer "+testToken)); r.status != 200 {
			t.Fatalf("second client with the token, scrape %d: status %d, want 200", i+1, r.status)
		}
	}
	if got := c.PromConnectionsDropped[stats.PromDropIPTableFull].Load(); got != 1 {
		t.Errorf("ip_table_full drops %d after right-token scrapes, want 1", got)
	}
	// The first client keeps its entry.
	if r := do(t, first, "GET", base+"/metrics", nil); r.status != 401 {
		t.Fatalf("first client again: status %d, want 401", r.status)
	}
}

func TestNewServerErrors(t *testing.T) {
	c := stats.New()
	reg := metrics.NewRegistry(c, nil, metrics.Options{})
	token := writeToken(t)
	tests := []struct {
		name    string
		opts    metrics.ServerOptions
		wantSub string
	}{
		{"empty addr", metrics.ServerOptions{TokenFile: token}, "listen address is empty"},
		{"bad addr", metrics.ServerOptions{Addr: "127.0.0.1:http-nope", TokenFile: token}, `listen on "127.0.0.1:http-nope"`},
		{"negative rate", metrics.ServerOptions{Addr: "127.0.0.1:0", TokenFile: token, RateLimitPerSec: -1}, "rate limit -1 per second"},
		{"negative burst", metrics.ServerOptions{Addr: "127.0.0.1:0", TokenFile: token, RateLimitBurst: -1}, "burst -1"},
		{"negative table", metrics.ServerOptions{Addr: "127.0.0.1:0", TokenFile: token, MaxClients: -1}, "client table size -1"},
		{"negative connection limit", metrics.ServerOptions{Addr: "127.0.0.1:0", TokenFile: token, MaxConnections: -1}, "connection limit -1"},
		{"missing token file", metrics.ServerOptions{Addr: "127.0.0.1:0", TokenFile: filepath.Join(t.TempDir(), "absent")}, "absent"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := metrics.NewServer(tc.opts, reg, c)
			if err == nil {
				s.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.wantSub) {
				t.Fatalf("error %q does not contain %q", err, tc.wantSub)
			}
		})
	}
}

// TestNonLoopbackWarning checks the bind warning.
func TestNonLoopbackWarning(t *testing.T) {
	tests := []struct {
		addr string
		warn bool
	}{
		{"127.0.0.1:0", false},
		{"[::1]:0", false},
		{":0", true},
		{"0.0.0.0:0", true},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			var rec logRecorder
			c := stats.New()
			s, err := metrics.NewServer(metrics.ServerOptions{Addr: tc.addr, TokenFile: writeToken(t), Logf: rec.logf},
				metrics.NewRegistry(c, nil, metrics.Options{}), c)
			if err != nil {
				if tc.addr == "[::1]:0" {
					t.Skipf("no IPv6 loopback: %v", err)
				}
				t.Fatal(err)
			}
			defer s.Close()
			logs := rec.lines()
			warned := len(logs) == 1 && strings.Contains(logs[0], "not a loopback address") &&
				strings.Contains(logs[0], s.Addr().String())
			if warned != tc.warn || len(logs) > 1 {
				t.Fatalf("logs %q, want warning=%v", logs, tc.warn)
			}
		})
	}
}

// TestCloseLeavesNoGoroutine serves a few scrapes, closes the server and
// checks that no goroutine of the server or its connections remains; also
// that Close without Serve releases the port.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t)
	t.Run("after serving", func(t *testing.T) {
		base, _ := startServer(t, metrics.ServerOptions{RateLimitPerSec: 5, RateLimitBurst: 10})
		keepAlive := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
		defer keepAlive.CloseIdleConnections()
		for range 3 {
			if r := do(t, keepAlive, "GET", base+"/metrics", bearer("Bearer "+testToken)); r.status != 200 {
				t.Fatalf("status %d", r.status)
			}
		}
	})
	t.Run("close without serve", func(t *testing.T) {
		c := stats.New()
		s, err := metrics.NewServer(metrics.ServerOptions{Addr: "127.0.0.1:0", TokenFile: writeToken(t)},
			metrics.NewRegistry(c, nil, metrics.Options{}), c)
		if err != nil {
			t.Fatal(err)
		}
		addr := s.Addr().String()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if err := s.Serve(); err != nil {
			t.Fatalf("Serve after Close: %v", err)
		}
		// The port is free again.
		s2, err := metrics.NewServer(metrics.ServerOptions{Addr: addr, TokenFile: writeToken(t)},
			metrics.NewRegistry(c, nil, metrics.Options{}), c)
		if err != nil {
			t.Fatalf("rebind %s: %v", addr, err)
		}
		s2.Close()
	})
}

// TestCloseWaitsForScrape checks that Close lets an in-flight scrape finish.
func TestCloseWaitsForScrape(t *testing.T) {
	c := stats.New()
	src := &blockingSource{entered: make(chan struct{}), release: make(chan struct{})}
	s, err := metrics.NewServer(metrics.ServerOptions{Addr: "127.0.0.1:0", TokenFile: writeToken(t)},
		metrics.NewRegistry(c, src, metrics.Options{PerPid: true}), c)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	got := make(chan response, 1)
	go func() {
		req, _ := http.NewRequest("GET", "http://"+s.Addr().String()+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := newClient().Do(req)
		if err != nil {
			got <- response{status: -1, body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- response{status: resp.StatusCode, body: string(b)}
	}()
	<-src.entered
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case <-closed:
		t.Fatal("Close returned while a scrape was in flight")
	case <-time.After(100 * time.Millisecond):
	}
	close(src.release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.status != 200 || !strings.Contains(r.body, `varta_beats_total{pid="7"} 1`) {
		t.Fatalf("in-flight scrape: status %d body %.300q", r.status, r.body)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

// blockingSource holds the first EachAgent until released.
type blockingSource struct {
	once             sync.Once
	entered, release chan struct{}
}

func (b *blockingSource) EachAgent(fn func(metrics.AgentView)) {
	b.once.Do(func() { close(b.entered); <-b.release })
	fn(metrics.AgentView{Pid: 7, Beats: 1})
}
func (b *blockingSource) Tracked() int  { return 1 }
func (b *blockingSource) Capacity() int { return 1 }

// clientFrom returns a client whose connections leave from source ip.
func clientFrom(t *testing.T, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true, DialContext: d.DialContext},
	}
}

// TestAbortedScrapeLogsOnce: a scraper that resets its connection while a
// scrape of 2,000 agents is being produced makes every later metric family
// fail to send; the endpoint logs that once, not once per family.
func TestAbortedScrapeLogsOnce(t *testing.T) {
	var rec logRecorder
	c := stats.New()
	src := &gatedSource{n: 2000, entered: make(chan struct{}), release: make(chan struct{})}
	s, err := metrics.NewServer(metrics.ServerOptions{Addr: "127.0.0.1:0", TokenFile: writeToken(t), Logf: rec.logf},
		metrics.NewRegistry(c, src, metrics.Options{PerPid: true}), c)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		if err := <-served; err != nil {
			t.Error(err)
		}
	}()

	conn, err := net.DialTimeout("tcp", s.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nAccept-Encoding: identity\r\n\r\n", testToken)
	select {
	case <-src.entered: // the scrape is being produced
	case <-time.After(10 * time.Second):
		t.Fatal("the scrape did not start")
	}
	// Reset the connection (no FIN: a close with linger 0 sends RST), so
	// that every write of the response fails.
	if err := conn.(*net.TCPConn).SetLinger(0); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	time.Sleep(50 * time.Millisecond) // the RST arrives
	close(src.release)

	failed := func() int {
		n := 0
		for _, l := range rec.lines() {
			if strings.Contains(l, "error encoding and sending metric family") {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(10 * time.Second)
	for failed() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // the rest of the scrape fails too
	families := encodingErrors(t, s)
	if n := failed(); n != 1 {
		t.Fatalf("%d send-error lines for one aborted scrape (%d families failed), want 1:\n%s", n, families, strings.Join(rec.lines(), "\n"))
	}
	if families < 2 {
		t.Fatalf("%d families failed to send: the scrape was not aborted mid-way", families)
	}
	t.Logf("one line for %d families that failed to send", families)
}

// encodingErrors scrapes the endpoint and returns how many metric families
// failed to send so far (promhttp_metric_handler_errors_total{cause="encoding"}).
func encodingErrors(t *testing.T, s *metrics.Server) int {
	t.Helper()
	r := do(t, newClient(), "GET", "http://"+s.Addr().String()+"/metrics", bearer("Bearer "+testToken))
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	for _, l := range strings.Split(r.body, "\n") {
		if v, ok := strings.CutPrefix(l, `promhttp_metric_handler_errors_total{cause="encoding"} `); ok {
			var n int
			fmt.Sscan(v, &n)
			return n
		}
	}
	t.Fatalf("no promhttp_metric_handler_errors_total{cause=\"encoding\"} in the scrape")
	return 0
}

// gatedSource holds the first EachAgent until released, then lists n
// agents.
type gatedSource struct {
	n                int
	once             sync.Once
	entered, release chan struct{}
}

func (g *gatedSource) EachAgent(fn func(metrics.AgentView)) {
	g.once.Do(func() { close(g.entered); <-g.release })
	for i := range g.n {
		fn(metrics.AgentView{Pid: uint32(i + 1), Beats: 1, Status: vlp.StatusOk})
	}
}
func (g *gatedSource) Tracked() int  { return g.n }
func (g *gatedSource) Capacity() int { return g.n }

// logRecorder collects the endpoint's log lines (ServerOptions.Logf).
type logRecorder struct {
	mu  sync.Mutex
	all []string
}

func (r *logRecorder) logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = append(r.all, fmt.Sprintf(format, args...))
}

// lines returns the lines logged so far.
func (r *logRecorder) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.all...)
}
