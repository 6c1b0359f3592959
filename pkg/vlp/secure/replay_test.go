package secure_test

import (
	"testing"
	"time"

	"github.com/varta-go/varta/pkg/vlp"
	"github.com/varta-go/varta/pkg/vlp/secure"
)

var t0 = time.Unix(1_700_000_000, 0)

func prefix(b byte) [secure.IVRandomSize]byte {
	return [secure.IVRandomSize]byte{b, b, b, b, b, b, b, b}
}

func beat(pid uint32, nonce uint64) *vlp.Frame {
	return &vlp.Frame{Status: vlp.StatusOk, Pid: pid, Timestamp: nonce, Nonce: nonce}
}

func terminal(pid uint32, ts uint64) *vlp.Frame {
	return &vlp.Frame{Status: vlp.StatusCritical, Pid: pid, Timestamp: ts, Nonce: vlp.NonceTerminal}
}

type step struct {
	at      time.Duration // after t0
	prefix  byte
	counter uint32
	f       *vlp.Frame
	want    secure.Verdict
}

func runSteps(t *testing.T, g *secure.ReplayGuard, steps []step) {
	t.Helper()
	for i, s := range steps {
		iv := secure.IV{Random: prefix(s.prefix), Counter: s.counter}
		if got := g.Check(t0.Add(s.at), iv, s.f); got != s.want {
			t.Errorf("step %d (pid %d prefix %x counter %d nonce %d ts %d): %v, want %v",
				i, s.f.Pid, s.prefix, s.counter, s.f.Nonce, s.f.Timestamp, got, s.want)
		}
	}
}

func TestReplayRules(t *testing.T) {
	A, R := secure.Accepted, secure.Replay
	tests := []struct {
		name  string
		steps []step
	}{
		{"first frame of a new prefix may carry counter 0, a duplicate is refused", []step{
			{0, 1, 0, beat(10, 1), A},
			{0, 1, 0, beat(10, 1), R},
			{0, 1, 1, beat(10, 2), A},
			{0, 1, 1, beat(10, 2), R},
		}},
		{"first frame of a new sender may carry any counter", []step{
			{0, 1, 500, beat(10, 9), A},
			{0, 1, 499, beat(10, 8), R},
			{0, 1, 501, beat(10, 10), A},
		}},
		{"counter must rise within a prefix, whatever the nonce says", []step{
			{0, 1, 5, beat(10, 5), A},
			{0, 1, 4, beat(10, 99), R},
			{0, 1, 5, beat(10, 99), R},
			{0, 1, 9, beat(10, 6), A},
		}},
		{"a replay arriving from another source port is still refused", []step{
			// The guard is keyed by the authenticated pid; the address the
			// frame came from plays no part.
			{0, 1, 0, beat(10, 1), A},
			{time.Second, 1, 0, beat(10, 1), R},
		}},
		{"senders are independent", []step{
			{0, 1, 0, beat(10, 1), A},
			{0, 1, 0, beat(11, 1), A},
			{0, 1, 0, beat(11, 1), R},
		}},
		{"prefix rotation: late frames of the previous prefix are accepted once", []step{
			{0, 0xA, 0, beat(10, 1), A},
			{0, 0xA, 1, beat(10, 2), A},
			// counters 2 and 3 are delayed in the network
			{0, 0xB, 0, beat(10, 5), A}, // new prefix, fresh nonce: A becomes previous
			{0, 0xA, 2, beat(10, 3), A},
			{0, 0xA, 3, beat(10, 4), A},
			{0, 0xA, 3, beat(10, 4), R},
			{0, 0xA, 1, beat(10, 2), R},
			{0, 0xB, 1, beat(10, 6), A},
			{0, 0xB, 0, beat(10, 5), R},
		}},
		{"a stale new prefix is refused and changes nothing", []step{
			{0, 0xA, 0, beat(10, 7), A},
			{0, 0xB, 0, beat(10, 8), A},
			{0, 0xC, 0, beat(10, 8), R}, // nonce not above 8
			{0, 0xC, 5, beat(10, 3), R},
			{0, 0xA, 1, beat(10, 9), A}, // A is still the previous prefix
			{0, 0xB, 1, beat(10, 10), A},
		}},
		{"a third prefix pushes out the first", []step{
			{0, 0xA, 0, beat(10, 1), A},
			{0, 0xB, 0, beat(10, 2), A},
			{0, 0xC, 0, beat(10, 3), A}, // previous = B, A forgotten
			{0, 0xA, 1, beat(10, 2), R}, // A is a new prefix now and nonce 2 is stale
			{0, 0xB, 1, beat(10, 4), A},
		}},
		{"terminal frames are ordered by timestamp across prefixes", []step{
			{0, 0xA, 0, beat(10, 1), A},
			{0, 0xA, 1, beat(10, 2), A},
			{0, 0xD, 0, terminal(10, 100), A}, // panic prefix: fresh by timestamp
			{0, 0xA, 2, beat(10, 3), A},       // regular beats continue under the previous prefix
			{0, 0xE, 0, terminal(10, 100), R}, // same timestamp under another prefix
			{0, 0xE, 0, terminal(10, 99), R},  // older
			{0, 0xD, 0, terminal(10, 100), R}, // exact replay
			{0, 0xE, 0, terminal(10, 101), A}, // newer
			{0, 0xF, 0, beat(10, 2), R},       // regular freshness is by nonce, unaffected
			{0, 0xF, 0, beat(10, 4), A},
		}},
		{"a terminal frame does not make regular nonces fresh", []step{
			{0, 0xA, 0, beat(10, 50), A},
			{0, 0xB, 0, terminal(10, 1_000_000), A},
			{0, 0xC, 0, beat(10, 50), R},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runSteps(t, secure.NewReplayGuard(secure.ReplayConfig{}), tt.steps)
		})
	}
}

func TestReplayCapacity(t *testing.T) {
	g := secure.NewReplayGuard(secure.ReplayConfig{Capacity: 2, IdleTimeout: time.Minute})
	A, R, F := secure.Accepted, secure.Replay, secure.TableFull
	runSteps(t, g, []step{
		{0, 1, 0, beat(10, 1), A},
		{0, 1, 0, beat(11, 1), A},
		{time.Second, 1, 0, beat(12, 1), F}, // unknown sender, table full
		{time.Second, 1, 0, beat(12, 1), F}, // still full: live entries are not evicted
		{time.Second, 1, 1, beat(10, 2), A}, // known senders unaffected
		{time.Second, 1, 1, beat(10, 2), R},
		// pid 11 has been idle for a minute, pid 10 for 59 s
		{time.Minute, 1, 0, beat(12, 1), A},
		{time.Minute, 1, 0, beat(13, 1), F},
		{time.Minute, 1, 2, beat(10, 3), A},
	})
	if g.Len() != 2 {
		t.Errorf("Len = %d, want 2", g.Len())
	}
}

func TestReplayIdleExpiry(t *testing.T) {
	A, R := secure.Accepted, secure.Replay
	t.Run("default 600 s", func(t *testing.T) {
		g := secure.NewReplayGuard(secure.ReplayConfig{})
		runSteps(t, g, []step{
			{0, 1, 7, beat(10, 7), A},
			{599 * time.Second, 1, 7, beat(10, 7), R}, // still tracked
		})
		// Refused frames do not refresh the entry: it expires 600 s after
		// the last accepted frame.
		if n := g.Expire(t0.Add(600*time.Second - 1)); n != 0 || g.Len() != 1 {
			t.Fatalf("expired %d before 600 s, Len %d", n, g.Len())
		}
		if n := g.Expire(t0.Add(600 * time.Second)); n != 1 || g.Len() != 0 {
			t.Fatalf("Expire at 600 s dropped %d, Len %d; want 1, 0", n, g.Len())
		}
		// Once dropped, the sender starts over: this is the replay
		// window the idle timeout bounds.
		runSteps(t, g, []step{{601 * time.Second, 1, 7, beat(10, 7), A}})
	})
	t.Run("accepted frames keep a sender alive", func(t *testing.T) {
		g := secure.NewReplayGuard(secure.ReplayConfig{IdleTimeout: 10 * time.Second})
		var steps []step
		for i := range uint32(5) {
			steps = append(steps, step{time.Duration(i) * 9 * time.Second, 1, i, beat(10, uint64(i)+1), A})
		}
		steps = append(steps, step{40 * time.Second, 1, 2, beat(10, 3), R})
		runSteps(t, g, steps)
	})
	t.Run("Check expires idle senders on its own", func(t *testing.T) {
		g := secure.NewReplayGuard(secure.ReplayConfig{IdleTimeout: 10 * time.Second})
		runSteps(t, g, []step{
			{0, 1, 0, beat(10, 1), A},
			{5 * time.Second, 1, 0, beat(11, 1), A},
			{12 * time.Second, 1, 0, beat(12, 1), A},
		})
		if g.Len() != 2 {
			t.Errorf("Len = %d, want 2 (pid 10 idle for 12 s)", g.Len())
		}
	})
}

func TestReplayGuardSlotReuse(t *testing.T) {
	// Many senders come and go through a small table; the state of one
	// must never leak into the next sender that reuses its slot.
	g := secure.NewReplayGuard(secure.ReplayConfig{Capacity: 3, IdleTimeout: time.Second})
	now := t0
	for round := range 50 {
		now = now.Add(2 * time.Second) // everyone from the last round is idle
		for j := range uint32(3) {
			pid := uint32(round)*3 + j + 2
			iv := secure.IV{Random: prefix(1), Counter: 0}
			if v := g.Check(now, iv, beat(pid, 1)); v != secure.Accepted {
				t.Fatalf("round %d pid %d: %v", round, pid, v)
			}
			if v := g.Check(now, iv, beat(pid, 1)); v != secure.Replay {
				t.Fatalf("round %d pid %d duplicate: %v", round, pid, v)
			}
		}
		if g.Len() != 3 {
			t.Fatalf("round %d: Len %d", round, g.Len())
		}
	}
}

func TestReplayZeroAllocsKnownSender(t *testing.T) {
	g := secure.NewReplayGuard(secure.ReplayConfig{})
	for pid := uint32(2); pid < 500; pid++ {
		g.Check(t0, secure.IV{Random: prefix(1)}, beat(pid, 1))
	}
	f := beat(77, 1)
	iv := secure.IV{Random: prefix(1)}
	now := t0
	n := testing.AllocsPerRun(200, func() {
		iv.Counter++
		f.Nonce++
		now = now.Add(time.Millisecond)
		if v := g.Check(now, iv, f); v != secure.Accepted {
			t.Fatalf("Check: %v", v)
		}
	})
	if n != 0 {
		t.Errorf("%v allocs/op for a known sender, want 0", n)
	}
}

func TestVerdictString(t *testing.T) {
	for v, want := range map[secure.Verdict]string{secure.Accepted: "accepted", secure.Replay: "replay", secure.TableFull: "table_full", 9: "unknown"} {
		if v.String() != want {
			t.Errorf("%d.String() = %q, want %q", v, v.String(), want)
		}
	}
}
