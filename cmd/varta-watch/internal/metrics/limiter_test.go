package metrics

import (
	"net/netip"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
)

// step is one request to the limiter: client key, offset from t0, and the
// expected decision.
type step struct {
	client string
	at     time.Duration
	ok     bool
	reason stats.PromDropReason // when !ok
	size   int                  // table size after the step; -1 = don't check
}

func TestIPLimiter(t *testing.T) {
	const a, b, c = "10.0.0.1", "10.0.0.2", "10.0.0.3"
	tests := []struct {
		name              string
		rate              float64
		burst, maxClients int
		steps             []step
	}{
		{
			name: "burst then refill", rate: 2, burst: 3, maxClients: 8,
			steps: []step{
				{a, 0, true, 0, 1},
				{a, 0, true, 0, 1},
				{a, 0, true, 0, 1},
				{a, 0, false, stats.PromDropRateLimit, 1},
				{a, 499 * time.Millisecond, false, stats.PromDropRateLimit, 1},
				{a, 500 * time.Millisecond, true, 0, 1}, // one token after 1/rate
				{a, 500 * time.Millisecond, false, stats.PromDropRateLimit, 1},
				{b, 500 * time.Millisecond, true, 0, 2}, // another client has its own bucket
				{a, 10 * time.Second, true, 0, 2},       // refill is capped at the burst
				{a, 10 * time.Second, true, 0, 2},
				{a, 10 * time.Second, true, 0, 2},
				{a, 10 * time.Second, false, stats.PromDropRateLimit, 2},
			},
		},
		{
			name: "full table refuses new clients, keeps known ones", rate: 1, burst: 2, maxClients: 2,
			steps: []step{
				{a, 0, true, 0, 1},
				{b, 0, true, 0, 2},
				{c, 0, false, stats.PromDropIPTableFull, 2},
				{a, 0, true, 0, 2},
				{c, 500 * time.Millisecond, false, stats.PromDropIPTableFull, 2}, // no rescan before 1 s
				// At 1 s b has refilled to the burst (idle) and is dropped;
				// a took a second token at 0 and has not.
				{c, 1 * time.Second, true, 0, 2},
				{b, 1 * time.Second, false, stats.PromDropIPTableFull, 2},
			},
		},
		{
			name: "idle entries are forgotten only when room is needed", rate: 10, burst: 1, maxClients: 1,
			steps: []step{
				{a, 0, true, 0, 1},
				{a, time.Hour, true, 0, 1},
				{b, 2 * time.Hour, true, 0, 1}, // a idle, replaced
				{a, 2 * time.Hour, false, stats.PromDropIPTableFull, 1},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newIPLimiter(tc.rate, tc.burst, tc.maxClients)
			t0 := time.Unix(1_700_000_000, 0)
			for i, st := range tc.steps {
				ok, reason := l.allow(netip.MustParseAddr(st.client), t0.Add(st.at))
				if ok != st.ok || !ok && reason != st.reason {
					t.Fatalf("step %d (%s at %v): got ok=%v reason=%s, want ok=%v reason=%s",
						i, st.client, st.at, ok, reason.Label(), st.ok, st.reason.Label())
				}
				if st.size >= 0 && l.size() != st.size {
					t.Fatalf("step %d: table size %d, want %d", i, l.size(), st.size)
				}
			}
		})
	}
}

// TestIPLimiterFloodOfNewClients checks that a full table of active clients
// refuses a flood of new addresses without scanning for each of them.
func TestIPLimiterFloodOfNewClients(t *testing.T) {
	// Each active client is 10 ms from a full bucket, so the one scan at
	// t0 frees nothing and sets the next scan to t0 + minPruneInterval; a
	// rescan during the flood would move that later.
	l := newIPLimiter(100, 5, 64)
	t0 := time.Unix(1_700_000_000, 0)
	for i := range 64 {
		if ok, _ := l.allow(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), t0); !ok {
			t.Fatalf("client %d refused", i)
		}
	}
	for i := range 1000 {
		ok, reason := l.allow(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), t0.Add(time.Duration(i)*time.Microsecond))
		if ok || reason != stats.PromDropIPTableFull {
			t.Fatalf("new client %d: ok=%v reason=%s", i, ok, reason.Label())
		}
	}
	if want := t0.Add(minPruneInterval); !l.nextPrune.Equal(want) {
		t.Fatalf("next scan at %v, want %v (one scan, then back off)", l.nextPrune, want)
	}
}

func TestClientKey(t *testing.T) {
	tests := []struct{ remote, want string }{
		{"127.0.0.1:5555", "127.0.0.1"},
		{"[::ffff:192.0.2.7]:80", "192.0.2.7"},
		{"[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:443", "2001:db8:1:2::"},
		{"[2001:db8:1:2::1]:443", "2001:db8:1:2::"},
		{"[fe80::1%eth0]:9", "fe80::"},
		{"[::1]:9", "::"},
		{"garbage", "invalid IP"},
	}
	for _, tc := range tests {
		t.Run(tc.remote, func(t *testing.T) {
			if got := clientKey(tc.remote).String(); got != tc.want {
				t.Fatalf("clientKey(%q) = %s, want %s", tc.remote, got, tc.want)
			}
		})
	}
}
