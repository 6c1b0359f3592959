package faults

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
	"github.com/varta-go/varta/pkg/audit"
)

// noFileRoom returns how many more descriptors this process may open,
// after raising its soft limit to the hard one.
func noFileRoom(t *testing.T) int {
	t.Helper()
	var lim unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &lim)
	if lim.Cur < lim.Max {
		raised := unix.Rlimit{Cur: lim.Max, Max: lim.Max}
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &raised); err == nil {
			t.Cleanup(func() { unix.Setrlimit(unix.RLIMIT_NOFILE, &lim) })
			lim = raised
		}
	}
	return int(lim.Cur) - procFDs(os.Getpid()) - 256
}

// fromAddr returns a dialer whose connections leave from ip. The port is
// picked at connect time (IP_BIND_ADDRESS_NO_PORT), not at bind time, so
// tens of thousands of connections from one address do not search the
// ephemeral range once each.
func fromAddr(ip net.IP) *net.Dialer {
	return &net.Dialer{
		LocalAddr: &net.TCPAddr{IP: ip},
		Timeout:   5 * time.Second,
		Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
}

// auditRecords parses the complete records of an audit log.
func auditRecords(path string) []audit.Record {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []audit.Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if r, err := audit.ParseLine(sc.Bytes()); err == nil {
			out = append(out, r)
		}
	}
	return out
}

// TestMetricsIdleConnectionFlood (issue row "~20,000 idle keep-alive
// connections to the metrics port after one 401 each"): the daemon runs
// with a 4096-descriptor limit, an audit log and a recovery command. The
// attacker opens 20,000 connections (2,000 under -short) and sends one
// wrong-token request on each, keeping every connection the server does
// not close, then opens as many silent connections as its own descriptor
// limit allows (up to the same number) and keeps them. Required: the daemon's descriptors and RSS stay
// bounded, right-token scrapes succeed throughout, and an agent started
// after the flood is tracked and, when stopped, recovered (identity read
// from /proc, not refused).
func TestMetricsIdleConnectionFlood(t *testing.T) {
	conns := 20000
	if testing.Short() {
		conns = 2000
	}
	silent := min(conns, noFileRoom(t))
	dir := testsupport.ShortDir(t)
	tokenPath, token := testsupport.TokenFile(t, dir)
	auditPath := filepath.Join(dir, "audit.log")
	w := startWatch(t, dir, "--prom-addr", "127.0.0.1:0", "--prom-token-file", tokenPath,
		"--threshold-ms", "400", "--recovery-exec", "/bin/true {pid}", "--recovery-audit-file", auditPath)
	pid := w.Cmd.Process.Pid
	lim := unix.Rlimit{Cur: 4096, Max: 4096}
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &lim, nil); err != nil {
		t.Fatalf("prlimit: %v", err)
	}
	addr := w.PromAddr()
	mc := testsupport.NewMetricsClient(addr, token)
	if code, _, _ := mc.Scrape(); code != 200 {
		t.Fatalf("scrape before the flood: %d", code)
	}
	// An agent that beats all along must never be seen stalled.
	steady := exec.Command(beatBin, "run", "--socket", w.Socket, "--interval", "50ms")
	if err := steady.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { steady.Process.Kill(); steady.Wait() }()
	steadySeries := fmt.Sprintf(`varta_beats_total{pid="%d"}`, steady.Process.Pid)
	testsupport.Eventually(t, 10*time.Second, "the steady agent tracked", func() bool {
		_, m, _ := mc.Scrape()
		return m[steadySeries] > 0
	})
	fds0, rss0 := procFDs(pid), procRSSKiB(pid)

	// Sample the daemon's descriptors and RSS, and scrape, during the
	// flood.
	var maxFDs, maxRSS atomic.Int64
	var scrapes, scrapeOK atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	bg.Add(1)
	go func() {
		defer bg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if f := int64(procFDs(pid)); f > maxFDs.Load() {
				maxFDs.Store(f)
			}
			if r := int64(procRSSKiB(pid)); r > maxRSS.Load() {
				maxRSS.Store(r)
			}
			if n%5 == 0 {
				scrapes.Add(1)
				if code, _, _ := mc.Scrape(); code == 200 {
					scrapeOK.Add(1)
				}
			}
		}
	}()

	start := time.Now()
	held := make([]net.Conn, 0, 2*conns)
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	// The attacker is another host than the Prometheus server: it
	// connects from 127.0.0.2, the scraper from 127.0.0.1.
	attacker := fromAddr(net.IPv4(127, 0, 0, 2))
	req := []byte("GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\n\r\n")
	var got401 int
	refusals := map[int]int{} // status -> count
	for range conns {
		c, err := attacker.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial after %d connections: %v", len(held), err)
		}
		held = append(held, c)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(req); err != nil {
			continue
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		refusals[resp.StatusCode]++
		if resp.StatusCode == 401 || resp.StatusCode == 429 {
			got401++ // 429 once the per-client rate limit runs out
		}
		if resp.Close {
			// The server closes it: holding our end gains nothing.
			c.Close()
			held = held[:len(held)-1]
		}
	}
	keptA := len(held)
	phaseA := time.Since(start)
	// Phase B: silent connections that never send a byte.
	for range silent {
		c, err := attacker.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial silent connection: %v", err)
		}
		held = append(held, c)
	}
	phaseB := time.Since(start) - phaseA
	time.Sleep(500 * time.Millisecond)
	fdsFlood, rssFlood := procFDs(pid), procRSSKiB(pid)
	agentStart := time.Now()

	// An agent started after the flood is tracked and recovered.
	beat := exec.Command(beatBin, "run", "--socket", w.Socket, "--interval", "50ms")
	if err := beat.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		beat.Process.Signal(syscall.SIGKILL)
		beat.Process.Signal(syscall.SIGCONT)
		beat.Wait()
	}()
	testsupport.Eventually(t, 10*time.Second, "the new agent tracked", func() bool {
		_, m, _ := mc.Scrape()
		return m[fmt.Sprintf(`varta_beats_total{pid="%d"}`, beat.Process.Pid)] > 0
	})
	beat.Process.Signal(syscall.SIGSTOP)
	var recs []audit.Record
	testsupport.Eventually(t, 15*time.Second, "a recovery of the stopped agent", func() bool {
		recs = auditRecords(auditPath)
		for _, r := range recs {
			if r.Kind == audit.KindSpawn && int(r.Spawn.AgentPid) == beat.Process.Pid {
				return true
			}
		}
		return false
	})
	recovered := time.Since(agentStart)
	cancel()
	bg.Wait()
	for _, r := range recs {
		if r.Kind == audit.KindRefused {
			t.Errorf("recovery refused during the flood: %+v", r.Refused)
		}
	}
	_, m, _ := mc.Scrape()
	steadyStalls := m[fmt.Sprintf(`varta_stalls_total{pid="%d"}`, steady.Process.Pid)]
	if steadyStalls != 0 {
		t.Errorf("the agent that beat all along was seen stalled %.0f time(s)", steadyStalls)
	}
	evicted := m[`varta_prom_connections_dropped_total{reason="connection_evicted"}`]
	limited := m[`varta_prom_connections_dropped_total{reason="connection_limit"}`]
	if got401 < conns*9/10 {
		t.Errorf("only %d of %d wrong-token requests answered 401 or 429: %v", got401, conns, refusals)
	}
	if maxFDs.Load() > int64(fds0)+64+16 {
		t.Errorf("descriptors peaked at %d (before the flood %d; limit 64 connections)", maxFDs.Load(), fds0)
	}
	if maxRSS.Load() > int64(rss0)+64<<10 {
		t.Errorf("RSS peaked at %d KiB (before %d KiB)", maxRSS.Load(), rss0)
	}
	if scrapes.Load() == 0 || scrapeOK.Load() != scrapes.Load() {
		t.Errorf("right-token scrapes during the flood: %d of %d succeeded", scrapeOK.Load(), scrapes.Load())
	}
	t.Logf("connections: %d after a 401 each (answered %v, %d left open by the server, %v) + %d silent (%v); new agent tracked and recovered in %v; daemon fds %d before, peak %d, %d after; RSS %d KiB before, peak %d KiB, %d KiB after; scrapes %d/%d ok; connection_evicted %.0f, connection_limit %.0f; new agent recovered, %d refused records; steady agent: %.0f beats, %.0f stalls",
		conns, refusals, keptA, phaseA.Round(time.Millisecond), silent, phaseB.Round(time.Millisecond), recovered.Round(time.Millisecond), fds0, maxFDs.Load(), fdsFlood, rss0, maxRSS.Load(), rssFlood,
		scrapeOK.Load(), scrapes.Load(), evicted, limited, countKind(recs, audit.KindRefused), m[steadySeries], steadyStalls)
}

// rawRequest sends req from src to dst on a new TCP connection and reads
// only the status line into status; it reports whether the answer was
// 503. It uses the system calls directly rather than package net: the
// flood must outrun the per-client table's one-second entries (more than
// 4,096 addresses a second), and under the race detector the net
// package's poller and goroutines cost the test process more than the
// daemon (net: about 2,900 requests a second on 2 cores, here well above
// the 4,096 needed).
func rawRequest(src [4]byte, dst unix.SockaddrInet4, req, status []byte) (bool, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	tv := unix.Timeval{Sec: 2}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: src}); err != nil {
		return false, err
	}
	if err := unix.Connect(fd, &dst); err != nil { // a copy: Connect writes into it
		return false, err
	}
	if _, err := unix.Write(fd, req); err != nil {
		return false, err
	}
	for got := 0; got < len(status); {
		n, err := unix.Read(fd, status[got:])
		if err != nil {
			return false, err
		}
		if n == 0 {
			return false, io.ErrUnexpectedEOF
		}
		got += n
	}
	return string(status[9:]) == "503", nil
}

func countKind(recs []audit.Record, k audit.Kind) int {
	n := 0
	for _, r := range recs {
		if r.Kind == k {
			n++
		}
	}
	return n
}

// TestMetricsBadTokenFromManyAddresses (issue row "~4,600 source
// addresses send bad-token requests"): wrong-token requests from 4,600
// loopback addresses keep the 4096-entry per-client table full while the
// Prometheus scraper, with the right token, scrapes every 200 ms: no
// right-token scrape may be refused. The table must have been full (a
// wrong-token request answered 503 ip_table_full) for 6 s (2 s under
// -short) of scrapes; a flood too slow to fill it within 30 s fails the
// case instead of passing it unattacked.
func TestMetricsBadTokenFromManyAddresses(t *testing.T) {
	const addrs = 4600
	const fillWithin = 30 * time.Second
	dur := pick(2*time.Second, 6*time.Second)
	dir := testsupport.ShortDir(t)
	tokenPath, token := testsupport.TokenFile(t, dir)
	// rate 1/s, burst 1: one wrong request keeps an address's entry busy
	// for a second, so the flood can hold the 4096-entry table full.
	w := startWatch(t, dir, "--threshold-ms", "1000", "--prom-addr", "127.0.0.1:0", "--prom-token-file", tokenPath,
		"--prom-rate-limit-per-sec", "1", "--prom-rate-limit-burst", "1")
	addr := w.PromAddr()
	mc := testsupport.NewMetricsClient(addr, token)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sent, refusedFull atomic.Int64
	var wg sync.WaitGroup
	const workers = 24 // below the 64 connection slots
	req := []byte("GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\n\r\n")
	ap := netip.MustParseAddrPort(addr)
	dst := unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status := make([]byte, len("HTTP/1.1 503"))
			for n := i; ctx.Err() == nil; n += workers {
				a := n % addrs
				full, err := rawRequest([4]byte{127, 1 + byte(a>>16), byte(a >> 8), byte(a)}, dst, req, status)
				if err != nil {
					continue
				}
				if full {
					refusedFull.Add(1)
				}
				sent.Add(1)
			}
		}()
	}
	var scrapes, ok, scrapesFull int
	statuses := map[int]int{}
	start := time.Now()
	var fullSince time.Time // first 503 ip_table_full seen
	for {
		time.Sleep(200 * time.Millisecond)
		full := refusedFull.Load() > 0
		if full && fullSince.IsZero() {
			fullSince = time.Now()
		}
		code, _, _ := mc.Scrape()
		scrapes++
		statuses[code]++
		if code == 200 {
			ok++
		}
		if full {
			scrapesFull++
		}
		if !fullSince.IsZero() && time.Since(fullSince) >= dur {
			break
		}
		if fullSince.IsZero() && time.Since(start) > fillWithin {
			break
		}
	}
	elapsed := time.Since(start)
	cancel()
	wg.Wait()
	_, m, _ := mc.Scrape()
	full := m[`varta_prom_connections_dropped_total{reason="ip_table_full"}`]
	t.Logf("%d addresses, %d wrong-token requests in %v (%.0f/s; %d answered 503 ip_table_full, counter %.0f); table full after %v; right-token scrapes %d/%d ok, %d of them while the table was full",
		addrs, sent.Load(), elapsed.Round(time.Millisecond), float64(sent.Load())/elapsed.Seconds(), refusedFull.Load(), full,
		fullSince.Sub(start).Round(time.Millisecond), ok, scrapes, scrapesFull)
	if fullSince.IsZero() {
		t.Fatalf("the flood (%d requests in %v) never filled the per-client table: the case did not attack", sent.Load(), elapsed.Round(time.Millisecond))
	}
	if full == 0 {
		t.Errorf("503 ip_table_full answered %d times but varta_prom_connections_dropped_total{reason=\"ip_table_full\"} is 0", refusedFull.Load())
	}
	if ok != scrapes {
		t.Errorf("right-token scrapes: %d of %d succeeded (statuses %v)", ok, scrapes, statuses)
	}
	if statuses[http.StatusServiceUnavailable] > 0 {
		t.Errorf("a right-token scrape was refused with 503")
	}
	if strings.Contains(w.Stderr.String(), "panic") {
		t.Fatalf("daemon stderr:\n%s", w.Stderr.String())
	}
}
