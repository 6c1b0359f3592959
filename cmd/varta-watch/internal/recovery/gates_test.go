package recovery

import (
	"maps"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/pkg/audit"
	"github.com/varta-go/varta/pkg/vlp"
)

const (
	kernel   = vlp.OriginKernelAttested
	attested = vlp.OriginOperatorAttestedTransport
	udp      = vlp.OriginNetworkUnverified
	sockMode = vlp.OriginSocketModeOnly
)

// step submits one stall after advancing the clock and expects one
// decision: "spawn" or the audit reason of a refused record.
type step struct {
	advance time.Duration
	wait    bool // first tick until every child is reaped (clock not advanced)
	stall   Stall
	verdict *Verdict // nil = VerdictFresh
	want    string
}

func vp(v Verdict) *Verdict { return &v }

// reasonCounts is the test's own copy of docs/recovery.md §3: for each audit
// reason, the outcome label it counts under and its structural refusal
// label of varta_recovery_refused_total ("" for none).
var reasonCounts = map[string]struct{ outcome, refused string }{
	"spawn":                      {"spawned", ""},
	"cross_namespace_agent":      {"refused_cross_namespace", "cross_namespace_agent"},
	"unauthenticated_transport":  {"refused_unauthenticated_transport", "unauthenticated_transport"},
	"socket_mode_only":           {"refused_socket_mode_only", "socket_mode_only"},
	"debounced":                  {"debounced", ""},
	"outstanding_in_flight":      {"debounced", ""},
	"outstanding_capacity":       {"refused_outstanding_capacity", "outstanding_capacity"},
	"debounce_capacity":          {"refused_debounce_capacity", "debounce_capacity"},
	"spawn_failed":               {"spawn_failed", ""},
	"skipped_agent_resumed":      {"skipped_agent_resumed", ""},
	"skipped_pid_recycled":       {"skipped_pid_recycled", ""},
	"skipped_stall_unverifiable": {"skipped_stall_unverifiable", ""},
}

// outcomeCounts returns the counters as varta_recovery_outcomes_total and
// varta_recovery_refused_total show them, by label value (zeros left out).
func outcomeCounts(c *stats.Counters) (outcomes, refused map[string]uint64) {
	outcomes, refused = map[string]uint64{}, map[string]uint64{}
	for o := range stats.NumOutcomes {
		if n := c.RecoveryOutcomes[o].Load(); n > 0 {
			outcomes[o.Label()] += n
		}
	}
	for _, r := range stats.StructuralReasons() {
		if n := c.Refusals(r); n > 0 {
			refused[r.String()] += n
		}
	}
	return outcomes, refused
}

func TestGates(t *testing.T) {
	k := func(pid uint32, gen uint64) Stall { return Stall{Pid: pid, Generation: gen, Origin: kernel} }
	for _, tc := range []struct {
		name  string
		opts  func(*Options)
		steps []step
		check func(t *testing.T, r *Runner)
	}{
		{name: "kernel attested spawns", steps: []step{{stall: k(10, 1), want: "spawn"}}},
		{name: "operator attested spawns", steps: []step{{stall: Stall{Pid: 10, Origin: attested}, want: "spawn"}}},
		{name: "cross namespace refused", steps: []step{
			{stall: Stall{Pid: 10, Generation: 1, Origin: kernel, CrossNamespace: true}, want: "cross_namespace_agent"}}},
		{name: "cross namespace allowed", opts: func(o *Options) { o.AllowCrossNamespace = true }, steps: []step{
			{stall: Stall{Pid: 10, Generation: 1, Origin: kernel, CrossNamespace: true}, want: "spawn"}}},
		{name: "namespace gate before origin gate", steps: []step{
			{stall: Stall{Pid: 10, Origin: udp, CrossNamespace: true}, want: "cross_namespace_agent"}}},
		{name: "allowed cross namespace still needs an eligible origin", opts: func(o *Options) { o.AllowCrossNamespace = true }, steps: []step{
			{stall: Stall{Pid: 10, Origin: udp, CrossNamespace: true}, want: "unauthenticated_transport"}}},
		{name: "network unverified refused", steps: []step{{stall: Stall{Pid: 10, Origin: udp}, want: "unauthenticated_transport"}}},
		{name: "socket mode only refused", steps: []step{{stall: Stall{Pid: 10, Origin: sockMode}, want: "socket_mode_only"}}},
		{name: "unknown origin fails closed", steps: []step{{stall: Stall{Pid: 10, Origin: vlp.Origin(9)}, want: "unauthenticated_transport"}}},
		{name: "same process debounced", steps: []step{
			{stall: k(10, 1), want: "spawn"},
			{advance: 999 * time.Millisecond, stall: k(10, 1), want: "debounced"}}},
		{name: "window elapsed but child still running", steps: []step{
			{stall: k(10, 1), want: "spawn"},
			{advance: time.Second, stall: k(10, 1), want: "outstanding_in_flight"}}},
		{name: "debounce off: the same process again at once", opts: func(o *Options) { o.DebounceOff = true }, steps: []step{
			{stall: k(10, 1), want: "spawn"},
			{stall: k(10, 1), want: "outstanding_in_flight"}},
			check: func(t *testing.T, r *Runner) {
				if until := r.DebouncedUntil(10, 1, uint64(time.Hour)); until != 0 {
					t.Errorf("debounced until %d with the window off", until)
				}
			}},
		{name: "debounce off: a finished recovery does not hold back the next", opts: func(o *Options) { o.DebounceOff, o.Program, o.Args = true, "/bin/true", nil }, steps: []step{
			{stall: k(10, 1), want: "spawn"},
			{wait: true, stall: k(10, 1), want: "spawn"}}},
		{name: "default debounce holds back a finished recovery", opts: func(o *Options) { o.Program, o.Args = "/bin/true", nil }, steps: []step{
			{stall: k(10, 1), want: "spawn"},
			{wait: true, stall: k(10, 1), want: "debounced"}}},
		{name: "unknown generation matches any", steps: []step{
			{stall: Stall{Pid: 10, Origin: attested}, want: "spawn"},
			{stall: k(10, 7), want: "debounced"},
			{advance: time.Second, stall: k(10, 7), want: "outstanding_in_flight"}}},
		{name: "new process on the same pid is not debounced", steps: []step{
			{stall: k(10, 1), want: "spawn"},
			{stall: k(10, 2), want: "spawn"}},
			check: func(t *testing.T, r *Runner) {
				old := r.byAgent[10].nextSame
				if old == nil || old.gen != 1 || !old.killed {
					t.Errorf("the previous process's child was not killed: %+v", old)
				}
			}},
		{name: "origin gate before debounce", steps: []step{
			{stall: k(10, 1), want: "spawn"},
			{stall: Stall{Pid: 10, Generation: 1, Origin: sockMode}, want: "socket_mode_only"}}},
		{name: "refusal does not consume the debounce window", steps: []step{
			{stall: Stall{Pid: 10, Generation: 1, Origin: sockMode}, want: "socket_mode_only"},
			{stall: Stall{Pid: 10, Generation: 1, Origin: kernel, CrossNamespace: true}, want: "cross_namespace_agent"},
			{stall: k(10, 1), verdict: vp(VerdictResumed), want: "skipped_agent_resumed"},
			{stall: k(10, 1), want: "spawn"}}},
		{name: "outstanding capacity", opts: func(o *Options) { o.OutstandingCapacity = 1 }, steps: []step{
			{stall: k(10, 1), want: "spawn"},
			{stall: k(11, 1), want: "outstanding_capacity"}}},
		{name: "debounce before outstanding capacity", opts: func(o *Options) { o.OutstandingCapacity = 1 }, steps: []step{
			{stall: k(10, 1), want: "spawn"},
			{stall: k(10, 1), want: "debounced"},
			{advance: time.Second, stall: k(10, 1), want: "outstanding_in_flight"}}},
		{name: "outstanding capacity before debounce capacity", opts: func(o *Options) { o.OutstandingCapacity, o.LedgerCapacity = 1, 1 }, steps: []step{
			{stall: k(10, 1), want: "spawn"},
			{stall: k(11, 1), want: "outstanding_capacity"}}},
		{name: "full ledger of fresh entries fails closed, stale entry evicted", opts: func(o *Options) { o.LedgerCapacity = 2 }, steps: []step{
			{stall: k(10, 1), want: "spawn"},
			{advance: 500 * time.Millisecond, stall: k(11, 1), want: "spawn"},
			{stall: k(12, 1), want: "debounce_capacity"},
			{advance: 600 * time.Millisecond, stall: k(12, 1), want: "spawn"}, // evicts pid 10 (1.1 s old)
			{stall: k(13, 1), want: "debounce_capacity"}},                     // pid 11 is 0.6 s old: kept
			check: func(t *testing.T, r *Runner) {
				if _, ok := r.ledger.byPid[10]; ok {
					t.Error("stale entry of pid 10 not evicted")
				}
				if _, ok := r.ledger.byPid[11]; !ok {
					t.Error("fresh entry of pid 11 evicted")
				}
			}},
		{name: "a pid already in a full ledger needs no room", opts: func(o *Options) { o.LedgerCapacity = 1 }, steps: []step{
			{stall: k(10, 1), want: "spawn"},
			{stall: k(10, 2), want: "spawn"}}},
		{name: "verify precedes every gate", steps: []step{
			{stall: Stall{Pid: 10, Origin: udp, CrossNamespace: true}, verdict: vp(VerdictResumed), want: "skipped_agent_resumed"},
			{stall: Stall{Pid: 10, Origin: udp, CrossNamespace: true}, verdict: vp(VerdictRecycled), want: "skipped_pid_recycled"},
			{stall: Stall{Pid: 10, Origin: udp, CrossNamespace: true}, verdict: vp(VerdictUnverifiable), want: "skipped_stall_unverifiable"}}},
		{name: "unknown verdict fails closed", steps: []step{
			{stall: k(10, 1), verdict: vp(Verdict(200)), want: "skipped_stall_unverifiable"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{Program: "/bin/sleep", Args: []string{"60"}}
			if tc.opts != nil {
				tc.opts(&opts)
			}
			clk := &fakeClock{ns: uint64(time.Hour)}
			h := newHarness(t, opts, clk.now)
			wantOutcomes := make(map[string]uint64)
			wantRefused := make(map[string]uint64)
			for i, st := range tc.steps {
				clk.advance(st.advance)
				if st.wait {
					done := len(h.a.completes)
					h.tickUntil(t, "every child reaped", func() bool { return h.r.Outstanding() == 0 })
					wantOutcomes["reaped_zero"] += uint64(len(h.a.completes) - done) // /bin/true
				}
				if st.verdict != nil {
					h.v.verdicts[st.stall.Pid] = *st.verdict
				} else {
					delete(h.v.verdicts, st.stall.Pid)
				}
				n := len(h.a.events)
				h.r.Submit(st.stall)
				h.r.Tick()
				if len(h.a.events) != n+1 || h.lastEvent() != st.want {
					t.Fatalf("step %d: events %q, want one more: %q", i, h.a.events[n:], st.want)
				}
				if st.want != "spawn" {
					if got := h.a.refused[len(h.a.refused)-1]; got.AgentPid != st.stall.Pid || got.ObserverNs != clk.ns {
						t.Errorf("step %d: refused record %+v", i, got)
					}
				}
				rc, ok := reasonCounts[st.want]
				if !ok {
					t.Fatalf("step %d: no expected counts for %q", i, st.want)
				}
				wantOutcomes[rc.outcome]++
				if rc.refused != "" {
					wantRefused[rc.refused]++
				}
			}
			gotOutcomes, gotRefused := outcomeCounts(h.c)
			if !maps.Equal(gotOutcomes, wantOutcomes) {
				t.Errorf("outcomes %v, want %v", gotOutcomes, wantOutcomes)
			}
			if !maps.Equal(gotRefused, wantRefused) {
				t.Errorf("refused %v, want %v", gotRefused, wantRefused)
			}
			if tc.check != nil {
				tc.check(t, h.r)
			}
		})
	}
}

func TestLedger(t *testing.T) {
	const w = uint64(time.Second)
	t.Run("prune after ten windows", func(t *testing.T) {
		l := newLedger(8)
		l.record(1, 1, 0)
		l.record(2, 1, 5*w)
		l.prune(10*w-1, 10*w)
		if l.len() != 2 {
			t.Fatalf("pruned too early: %d entries", l.len())
		}
		l.prune(10*w, 10*w)
		if _, ok := l.byPid[1]; ok || l.len() != 1 {
			t.Fatalf("entry 1 not pruned at 10 windows: %d entries", l.len())
		}
	})
	t.Run("re-record moves to the back", func(t *testing.T) {
		l := newLedger(2)
		l.record(1, 1, 0)
		l.record(2, 1, w/2)
		l.record(1, 2, 2*w) // pid 1 again (new process): now the newest
		if !l.hasRoom(3, 2*w, w) {
			t.Fatal("pid 2 is stale and evictable")
		}
		l.record(3, 1, 2*w)
		if _, ok := l.byPid[2]; ok {
			t.Fatal("oldest entry (pid 2) should have been evicted")
		}
		if !l.fresh(1, 2, 2*w, w) || l.fresh(1, 1, 2*w, w) {
			t.Fatal("pid 1 entry must carry the new generation")
		}
	})
	t.Run("clock regression counts as fresh", func(t *testing.T) {
		l := newLedger(1)
		l.record(1, 1, 5*w)
		if !l.fresh(1, 1, 4*w, w) || l.hasRoom(2, 4*w, w) {
			t.Fatal("an entry from the future must stay fresh")
		}
	})
}

func TestPruneInTick(t *testing.T) {
	clk := &fakeClock{ns: uint64(time.Hour)}
	h := newHarness(t, Options{Program: "/bin/true"}, clk.now)
	h.r.Submit(Stall{Pid: 10, Generation: 1, Origin: kernel})
	h.r.Tick()
	if h.r.ledger.len() != 1 {
		t.Fatalf("ledger has %d entries after a spawn", h.r.ledger.len())
	}
	clk.advance(10*time.Second - 1)
	h.r.Tick()
	if h.r.ledger.len() != 1 {
		t.Fatal("pruned before 10 × debounce")
	}
	clk.advance(1)
	h.r.Tick()
	if h.r.ledger.len() != 0 {
		t.Fatal("not pruned at 10 × debounce")
	}
}

func TestSpawnBudgetAndFreshness(t *testing.T) {
	clk := &fakeClock{ns: uint64(time.Hour)}
	h := newHarness(t, Options{Program: "/bin/true", SpawnBurst: 2, SpawnRate: 1}, clk.now)
	for pid := uint32(1); pid <= 4; pid++ {
		h.r.Submit(Stall{Pid: pid, Generation: 1, Origin: kernel})
	}
	h.r.Tick()
	if len(h.a.spawns) != 2 || h.r.Pending() != 2 {
		t.Fatalf("after tick 1: %d spawns, %d pending; want 2, 2", len(h.a.spawns), h.r.Pending())
	}
	if h.v.calls[3] != 0 || h.v.calls[4] != 0 {
		t.Fatal("waiting stalls must be verified when decided, not before")
	}
	h.v.verdicts[3] = VerdictResumed // pid 3 beat while waiting
	h.r.Tick()                       // no time passed: no token, nothing decided
	if len(h.a.events) != 2 || h.r.Pending() != 2 {
		t.Fatalf("a tick without new tokens decided %q", h.a.events)
	}
	clk.advance(2 * time.Second) // two tokens
	h.r.Tick()
	if got := h.a.events; len(got) != 4 || got[2] != "skipped_agent_resumed" || got[3] != "spawn" {
		t.Fatalf("events %q", got)
	}
	if h.r.Pending() != 0 {
		t.Fatalf("%d still pending", h.r.Pending())
	}
}

func TestDecisionBudget(t *testing.T) {
	clk := &fakeClock{ns: uint64(time.Hour)}
	h := newHarness(t, Options{Program: "/bin/true", MaxDecisionsPerTick: 3}, clk.now)
	for pid := uint32(1); pid <= 5; pid++ {
		h.r.Submit(Stall{Pid: pid, Origin: udp})
	}
	h.r.Tick()
	if len(h.a.events) != 3 || h.r.Pending() != 2 {
		t.Fatalf("after tick 1: %d decisions, %d pending", len(h.a.events), h.r.Pending())
	}
	h.r.Tick()
	if len(h.a.events) != 5 || h.r.Pending() != 0 {
		t.Fatalf("after tick 2: %d decisions, %d pending", len(h.a.events), h.r.Pending())
	}
	// Each stall is decided exactly once, in submission order: the two
	// that waited are the last two, not a repeat of the first ones.
	for i, rec := range h.a.refused {
		if rec.AgentPid != uint32(i+1) {
			t.Fatalf("decision %d was for pid %d, want %d (refused %+v)", i, rec.AgentPid, i+1, h.a.refused)
		}
	}
}

func TestPendingOverflowRefused(t *testing.T) {
	clk := &fakeClock{ns: uint64(time.Hour)}
	h := newHarness(t, Options{Program: "/bin/true", OutstandingCapacity: 1}, clk.now)
	for pid := uint32(1); pid <= 3; pid++ {
		h.r.Submit(Stall{Pid: pid, Generation: 1, Origin: kernel})
	}
	if h.r.Pending() != 2 || len(h.a.refused) != 1 || h.a.refused[0].AgentPid != 3 || h.a.refused[0].Reason != "outstanding_capacity" {
		t.Fatalf("pending %d, refused %+v", h.r.Pending(), h.a.refused)
	}
	if _, refused := outcomeCounts(h.c); refused["outstanding_capacity"] != 1 {
		t.Fatal("overflow not counted")
	}
}

// TestSpawnRateOverTime: 1,000 stalls of distinct agents spread over 2 s of
// the observer clock, each followed by a Tick as the observer does on every
// stall-timer wake, start no more than burst + rate × 2 s children; every
// stall gets exactly one record (spawn, or refused: the deferred ones still
// queued at shutdown are refused with reason shutdown).
func TestSpawnRateOverTime(t *testing.T) {
	const (
		stalls = 1000
		span   = 2 * time.Second
	)
	clk := &fakeClock{ns: uint64(time.Hour)}
	h := newHarness(t, Options{Program: "/bin/true", OutstandingCapacity: stalls}, clk.now)
	for i := range stalls {
		h.r.Submit(Stall{Pid: uint32(1000 + i), Generation: 1, Origin: kernel})
		h.r.Tick()
		clk.advance(span / stalls)
	}
	maxSpawns := DefaultSpawnBurst + int(DefaultSpawnRate*span.Seconds())
	spawned := len(h.a.spawns)
	if spawned > maxSpawns || spawned < maxSpawns-2 {
		t.Fatalf("%d children started for %d stalls over %v; want about %d (burst %d + %d/s)",
			spawned, stalls, span, maxSpawns, DefaultSpawnBurst, DefaultSpawnRate)
	}
	if h.r.Pending() != stalls-spawned {
		t.Fatalf("%d deferred, want %d", h.r.Pending(), stalls-spawned)
	}
	h.r.Shutdown(2 * time.Second)
	if got := len(h.a.spawns) + len(h.a.refused); got != stalls {
		t.Fatalf("%d records (%d spawn, %d refused) for %d stalls", got, len(h.a.spawns), len(h.a.refused), stalls)
	}
	for _, r := range h.a.refused {
		if r.Reason != "shutdown" || r.Why != audit.ReasonShutdown {
			t.Fatalf("refused record %+v, want reason shutdown", r)
		}
	}
	if got, _ := outcomeCounts(h.c); got["refused_shutdown"] != uint64(stalls-spawned) {
		t.Fatalf("refused_shutdown = %d, want %d", got["refused_shutdown"], stalls-spawned)
	}
	t.Logf("%d stalls over %v: %d spawned, %d deferred then refused at shutdown", stalls, span, spawned, stalls-spawned)
}
