package metrics

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
)

// DefaultMaxConnections is the default bound on the metrics endpoint's open
// connections (--prom-max-connections).
const DefaultMaxConnections = 64

// connLimiter bounds the open connections of the endpoint. Unlike
// netutil.LimitListener it never leaves a connection waiting in the
// kernel's accept queue: at the limit it closes, to make room, a connection
// without a request in progress (a keep-alive connection between two
// requests, or one that has not finished its headers): the one that has
// waited longest among those of the client (address, IPv6 /64) holding the
// most, so a client flooding connections evicts its own first. That is
// counted (connection_evicted); when every slot is serving a request, the
// new connection is closed unserved and counted (connection_limit). A
// client that authenticates is therefore never locked out by idle
// connections, however many an attacker opens, and the process never holds
// more than max connection descriptors, buffers and goroutines.
//
// The http.Server reports connection states through connState; a
// connection is evictable while it is new or idle.
type connLimiter struct {
	net.Listener
	max int
	c   *stats.Counters

	mu      sync.Mutex
	conns   map[*limitedConn]struct{}
	scratch []keyCount // victim's per-client counts, reused
}

func newConnLimiter(ln net.Listener, maxConns int, c *stats.Counters) *connLimiter {
	return &connLimiter{Listener: ln, max: maxConns, c: c, conns: make(map[*limitedConn]struct{}, maxConns)}
}

// limitedConn is one accepted connection. evictable and since are guarded
// by the limiter's mu.
type limitedConn struct {
	net.Conn
	l         *connLimiter
	key       netip.Addr // the client, as the rate limiter keys it
	evictable bool
	since     time.Time // when it last became evictable
	closeOnce sync.Once
	closeErr  error
}

// Close releases the connection's slot and closes it; it is idempotent.
func (c *limitedConn) Close() error {
	c.closeOnce.Do(func() {
		c.l.release(c)
		c.closeErr = c.Conn.Close()
	})
	return c.closeErr
}

// Accept returns the next connection, making room for it or refusing it
// when every slot is taken.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		now := time.Now()
		l.mu.Lock()
		var victim *limitedConn
		if len(l.conns) >= l.max {
			victim = l.victim()
			if victim == nil {
				l.mu.Unlock()
				conn.Close()
				l.c.PromConnectionsDropped[stats.PromDropConnectionLimit].Add(1)
				continue
			}
			delete(l.conns, victim)
		}
		lc := &limitedConn{Conn: conn, l: l, key: clientKey(conn.RemoteAddr().String()), evictable: true, since: now}
		l.conns[lc] = struct{}{}
		l.mu.Unlock()
		if victim != nil {
			// Closing the socket wakes the server goroutine blocked on
			// it, which then closes victim (a no-op for the slot).
			victim.Conn.Close()
			l.c.PromConnectionsDropped[stats.PromDropConnectionEvicted].Add(1)
		}
		return lc, nil
	}
}

// victim picks the connection to evict: among the evictable ones, the
// longest-evictable connection of the client holding the most of them, so a
// client flooding connections evicts its own before anyone else's. Called
// with mu held; nil when no connection is evictable.
func (l *connLimiter) victim() *limitedConn {
	// Count per client in a reused slice: a handful of clients hold the
	// slots, so a linear search beats a map and allocates nothing.
	counts := l.scratch[:0]
	var top *keyCount
	for c := range l.conns {
		if !c.evictable {
			continue
		}
		i := 0
		for i < len(counts) && counts[i].key != c.key {
			i++
		}
		if i == len(counts) {
			counts = append(counts, keyCount{key: c.key})
		}
		kc := &counts[i]
		kc.n++
		if kc.oldest == nil || c.since.Before(kc.oldest.since) {
			kc.oldest = c
		}
	}
	for i := range counts {
		if top == nil || counts[i].n > top.n {
			top = &counts[i]
		}
	}
	var v *limitedConn
	if top != nil {
		v = top.oldest
	}
	clear(counts)
	l.scratch = counts[:0]
	return v
}

// keyCount is one client's evictable connections during victim.
type keyCount struct {
	key    netip.Addr
	n      int
	oldest *limitedConn
}

// release frees c's slot (if it still holds one).
func (l *connLimiter) release(c *limitedConn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

// connState is the http.Server's ConnState hook: it marks connections
// evictable while no request is in progress on them.
func (l *connLimiter) connState(nc net.Conn, state http.ConnState) {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	c, ok := nc.(*limitedConn)
	if !ok {
		return
	}
	switch state {
	case http.StateNew, http.StateIdle:
		l.mu.Lock()
		c.evictable, c.since = true, time.Now()
		l.mu.Unlock()
	case http.StateActive:
		l.mu.Lock()
		c.evictable = false
		l.mu.Unlock()
	case http.StateHijacked, http.StateClosed:
		l.release(c)
	}
}
