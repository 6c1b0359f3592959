package metrics

import (
	"net/netip"
	"sync"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
)

// DefaultMaxClients is the default size of the per-client table of the
// metrics endpoint's rate limiter.
const DefaultMaxClients = 4096

// After a scan of a full table that freed nothing, the next scan waits until
// the first entry can have become idle, clamped to these bounds (so a flood
// of new addresses costs at most ten scans a second).
const (
	minPruneInterval = 100 * time.Millisecond
	maxPruneInterval = time.Second
)

// bucket is one client's token bucket.
type bucket struct {
	tokens float64
	last   time.Time
}

// ipLimiter is a per-client token-bucket rate limiter over a bounded table.
//
// A client whose bucket has refilled to the burst is idle: forgetting it
// changes no decision, because a new entry starts with a full bucket. When
// the table is full, a new client triggers one scan that drops every idle
// entry; if none is idle the client is refused (ip_table_full) and no scan
// runs again until the first entry can have become idle, so a flood of new
// addresses costs a bounded number of scans per second, not one per
// request.
type ipLimiter struct {
	rate  float64 // tokens per second, > 0
	burst float64 // bucket size, >= 1
	max   int     // table size, >= 1

	mu        sync.Mutex
	table     map[netip.Addr]bucket
	nextPrune time.Time // no scan of a full table before this
}

func newIPLimiter(rate float64, burst, maxClients int) *ipLimiter {
	return &ipLimiter{
		rate:  rate,
		burst: float64(burst),
		max:   maxClients,
		table: make(map[netip.Addr]bucket),
	}
}

// allow takes one token from key's bucket at time now. When it refuses, the
// reason says whether the client was over its rate or the table was full.
func (l *ipLimiter) allow(key netip.Addr, now time.Time) (bool, stats.PromDropReason) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.table[key]
	if ok {
		b.tokens = l.refill(b, now)
	} else {
		if len(l.table) >= l.max && !l.prune(now) {
			return false, stats.PromDropIPTableFull
		}
		b = bucket{tokens: l.burst}
	}
	b.last = now
	if b.tokens < 1 {
		l.table[key] = b
		return false, stats.PromDropRateLimit
	}
	b.tokens--
	l.table[key] = b
	return true, 0
}

// refill returns b's token count at now.
func (l *ipLimiter) refill(b bucket, now time.Time) float64 {
	elapsed := now.Sub(b.last).Seconds()
	if elapsed <= 0 {
		return b.tokens
	}
	return min(l.burst, b.tokens+elapsed*l.rate)
}

// prune drops every idle entry and reports whether any room was made. It
// does nothing before nextPrune. Called with mu held.
func (l *ipLimiter) prune(now time.Time) bool {
	if now.Before(l.nextPrune) {
		return false
	}
	soonest := time.Duration(-1)
	for k, b := range l.table {
		t := l.refill(b, now)
		if t >= l.burst {
			delete(l.table, k)
			continue
		}
		wait := time.Duration((l.burst - t) / l.rate * float64(time.Second))
		if soonest < 0 || wait < soonest {
			soonest = wait
		}
	}
	if len(l.table) < l.max {
		return true
	}
	l.nextPrune = now.Add(min(max(soonest, minPruneInterval), maxPruneInterval))
	return false
}

// size returns the number of clients in the table.
func (l *ipLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.table)
}

// clientKey maps a request's remote address to its limiter key: the IPv4
// address, or the /64 prefix of an IPv6 address (one host usually owns a
// whole /64, so keying by full address would let it fill the table).
// Unparsable addresses share the zero key.
func clientKey(remoteAddr string) netip.Addr {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	a := ap.Addr().Unmap()
	if a.Is6() {
		if p, err := a.WithZone("").Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return a
}
