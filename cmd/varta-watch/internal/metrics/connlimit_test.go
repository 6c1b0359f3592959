package metrics_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/metrics"
	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
)

// rawConn dials the server at base ("http://HOST:PORT").
func rawConn(t *testing.T, base string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// closedByServer reports whether the server closed conn within d (a read
// returns EOF or a reset rather than timing out).
func closedByServer(conn net.Conn, d time.Duration) bool {
	conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return true
}

// TestRefusedRequestClosesConnection checks that every refusal answers
// "Connection: close" and closes the connection, so a refused client keeps
// no idle keep-alive connection, while a served scrape keeps it open.
func TestRefusedRequestClosesConnection(t *testing.T) {
	tests := []struct {
		name       string
		path, auth string
		wantStatus int
		wantClose  bool
	}{
		{"no token", "/metrics", "", 401, true},
		{"wrong token", "/metrics", "Bearer nope", 401, true},
		{"unknown path without token", "/x", "", 404, true},
		{"right token", "/metrics", "Bearer " + testToken, 200, false},
	}
	base, _ := startServer(t, metrics.ServerOptions{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn := rawConn(t, base)
			req := "GET " + tc.path + " HTTP/1.1\r\nHost: x\r\n"
			if tc.auth != "" {
				req += "Authorization: " + tc.auth + "\r\n"
			}
			if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if resp.Close != tc.wantClose {
				t.Errorf("response Close %v, want %v", resp.Close, tc.wantClose)
			}
			if got := closedByServer(conn, 300*time.Millisecond); got != tc.wantClose {
				t.Errorf("server closed the connection: %v, want %v", got, tc.wantClose)
			}
		})
	}
}

// TestIdleConnectionsAreEvicted opens many more silent connections than
// the limit: each one beyond the limit evicts the oldest idle one (counted),
// and a scrape with the right token is still served.
func TestIdleConnectionsAreEvicted(t *testing.T) {
	const limit, idle = 4, 40
	base, c := startServer(t, metrics.ServerOptions{MaxConnections: limit})
	conns := make([]net.Conn, idle)
	for i := range conns {
		conns[i] = rawConn(t, base)
	}
	testsupport.Eventually(t, 10*time.Second, "evictions", func() bool {
		return c.PromConnectionsDropped[stats.PromDropConnectionEvicted].Load() == idle-limit
	})
	// The oldest connections were the ones closed.
	for i, conn := range conns {
		closed := closedByServer(conn, 50*time.Millisecond)
		if want := i < idle-limit; closed != want {
			t.Errorf("connection %d closed %v, want %v", i, closed, want)
		}
	}
	for i := range 3 {
		if r := do(t, newClient(), "GET", base+"/metrics", bearer("Bearer "+testToken)); r.status != 200 {
			t.Fatalf("scrape %d: status %d", i+1, r.status)
		}
	}
	if n := c.PromConnectionsDropped[stats.PromDropConnectionLimit].Load(); n != 0 {
		t.Errorf("connection_limit drops %d, want 0 (there was always an idle connection to evict)", n)
	}
}

// TestBusyConnectionsRefuseNew fills the only slot with a scrape in
// progress: a new connection is closed unserved and counted, and once the
// scrape finishes, scrapes are served again. A connection that has sent
// only part of its headers is not busy: it is evicted like an idle one.
func TestBusyConnectionsRefuseNew(t *testing.T) {
	c := stats.New()
	src := &blockingSource{entered: make(chan struct{}), release: make(chan struct{})}
	s, err := metrics.NewServer(metrics.ServerOptions{Addr: "127.0.0.1:0", TokenFile: writeToken(t), MaxConnections: 1},
		metrics.NewRegistry(c, src, metrics.Options{PerPid: true}), c)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	base := "http://" + s.Addr().String()
	scrape := func() int {
		req, _ := http.NewRequest("GET", base+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := newClient().Do(req)
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	first := make(chan int, 1)
	go func() { first <- scrape() }()
	<-src.entered
	if got := scrape(); got != -1 {
		t.Errorf("second scrape while the only slot is busy: status %d, want a closed connection", got)
	}
	if n := c.PromConnectionsDropped[stats.PromDropConnectionLimit].Load(); n != 1 {
		t.Errorf("connection_limit drops %d, want 1", n)
	}
	close(src.release)
	if got := <-first; got != 200 {
		t.Errorf("first scrape: status %d, want 200", got)
	}
	// A slow client (headers unfinished) holds the slot but is evicted.
	slow := rawConn(t, base)
	io.WriteString(slow, "GET /metrics HTTP/1.1\r\nHost: x\r\n")
	time.Sleep(50 * time.Millisecond)
	if got := scrape(); got != 200 {
		t.Errorf("scrape after a slow client: status %d, want 200", got)
	}
	if !closedByServer(slow, time.Second) {
		t.Error("slow client was not evicted")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

// TestFloodingClientEvictsItsOwn: a client flooding silent connections
// evicts its own, never the older idle connection of another address.
func TestFloodingClientEvictsItsOwn(t *testing.T) {
	const limit = 4
	base, c := startServer(t, metrics.ServerOptions{MaxConnections: limit})
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
	other, err := d.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for range 40 {
		rawConn(t, base)
	}
	testsupport.Eventually(t, 10*time.Second, "evictions", func() bool {
		return c.PromConnectionsDropped[stats.PromDropConnectionEvicted].Load() == 40-(limit-1)
	})
	if closedByServer(other, 100*time.Millisecond) {
		t.Fatal("the other client's connection was evicted by the flood")
	}
}

// TestSlowHeadersTimeOut: a connection that sends part of its headers and
// then nothing is closed by the server once the header timeout (5 s)
// passes, even below the connection limit, so a slow client cannot hold a
// slot for ever.
func TestSlowHeadersTimeOut(t *testing.T) {
	base, _ := startServer(t, metrics.ServerOptions{})
	conn := rawConn(t, base)
	start := time.Now()
	if _, err := io.WriteString(conn, "GET /metrics HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	if closedByServer(conn, time.Second) {
		t.Fatalf("closed after %v, before the header timeout", time.Since(start))
	}
	if !closedByServer(conn, 8*time.Second) {
		t.Fatalf("still open %v after its last header byte", time.Since(start).Round(time.Millisecond))
	}
	if d := time.Since(start); d < 4*time.Second {
		t.Fatalf("closed after %v, want the 5 s header timeout", d)
	}
}
