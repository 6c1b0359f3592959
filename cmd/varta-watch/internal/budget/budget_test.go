package budget

import (
	"testing"
	"time"
)

const s = int64(time.Second)

// step is one call at time at (seconds): a Decide (stall=false) or a Stall.
type step struct {
	at      float64
	stall   bool
	verdict Verdict
	until   float64 // expected Decision.Until in seconds (refusals)
	gaveUp  bool
	attempt int
}

func TestBookSequences(t *testing.T) {
	show := Config{ // the example
		Backoff: Backoff{Initial: time.Second, Factor: 2, Max: 4 * time.Second, ResetAfter: time.Minute},
		GiveUp:  GiveUp{After: 3, Within: time.Minute, RetryAfter: 5 * time.Second},
	}
	for _, tc := range []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{"no budget allows everything", Config{}, []step{
			{at: 1, attempt: 1}, {at: 1, attempt: 2}, {at: 1.5, attempt: 3},
		}},
		{"backoff 1s then 2s, capped at 4s", Config{Backoff: Backoff{Initial: time.Second, Factor: 2, Max: 4 * time.Second}}, []step{
			{at: 10, attempt: 1},
			{at: 10.5, verdict: RefuseBackoff, until: 11},
			{at: 11, attempt: 2},
			{at: 12.9, verdict: RefuseBackoff, until: 13},
			{at: 13, attempt: 3},
			{at: 16.99, verdict: RefuseBackoff, until: 17},
			{at: 17, attempt: 4},
			{at: 20.5, verdict: RefuseBackoff, until: 21}, // 8 s capped at 4 s
			{at: 21, attempt: 5},
		}},
		{"the show sequence: t, t+1, t+3, gave up, retry after 5s", show, []step{
			{at: 100, attempt: 1},
			{at: 100.2, verdict: RefuseBackoff, until: 101},
			{at: 101, attempt: 2},
			{at: 102, verdict: RefuseBackoff, until: 103},
			{at: 103, attempt: 3, gaveUp: true},
			{at: 103.5, verdict: RefuseGaveUp, until: 108},
			{at: 107.9, verdict: RefuseGaveUp, until: 108},
			{at: 108, attempt: 1}, // the budget starts over
			{at: 108.5, verdict: RefuseBackoff, until: 109},
		}},
		{"healthy for reset_after starts a new sequence", Config{Backoff: Backoff{Initial: time.Second, Factor: 3, Max: time.Hour, ResetAfter: 10 * time.Second}}, []step{
			{at: 0, attempt: 1},
			{at: 1, attempt: 2},
			{at: 5, attempt: 3},                         // 3 s after 1
			{at: 12, stall: true},                       // trouble: the healthy period restarts
			{at: 20, attempt: 4},                        // 8 s after the stall: same sequence (9 s after 5)
			{at: 25, verdict: RefuseBackoff, until: 47}, // 27 s after 20
			{at: 35.5, attempt: 1},                      // 10.5 s since the refusal at 25
		}},
		{"reset_after also ends gave_up", Config{
			Backoff: Backoff{Initial: time.Second, Factor: 1, Max: time.Second, ResetAfter: 30 * time.Second},
			GiveUp:  GiveUp{After: 2, Within: time.Minute, Never: true},
		}, []step{
			{at: 0, attempt: 1},
			{at: 1, attempt: 2, gaveUp: true},
			{at: 20, verdict: RefuseGaveUp, until: 0},
			{at: 49, verdict: RefuseGaveUp, until: 0}, // 29 s after the refusal at 20
			{at: 80, attempt: 1},
		}},
		{"never means never without a healthy period", Config{GiveUp: GiveUp{After: 1, Within: time.Minute, Never: true}}, []step{
			{at: 0, attempt: 1, gaveUp: true},
			{at: 3600, verdict: RefuseGaveUp},
			{at: 36000, verdict: RefuseGaveUp},
		}},
		{"recoveries outside the window do not count", Config{GiveUp: GiveUp{After: 3, Within: 10 * time.Second, RetryAfter: time.Second}}, []step{
			{at: 0, attempt: 1},
			{at: 6, attempt: 2},
			{at: 11, attempt: 3}, // 0 is out of the window: 2 within
			{at: 15, attempt: 4, gaveUp: true},
			{at: 15.5, verdict: RefuseGaveUp, until: 16},
			{at: 16, attempt: 1},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			b := NewBook()
			for i, st := range tc.steps {
				now := int64(st.at * float64(s))
				if st.stall {
					b.Stall("svc", tc.cfg, now)
					continue
				}
				d := b.Decide("svc", tc.cfg, now)
				want := Decision{Verdict: st.verdict, GaveUp: st.gaveUp, Attempt: st.attempt}
				if st.verdict != Allow {
					want.Until = int64(st.until * float64(s))
				}
				if d != want {
					t.Fatalf("step %d at %vs: got %+v, want %+v", i, st.at, d, want)
				}
			}
		})
	}
}

func TestBookServicesAreIndependent(t *testing.T) {
	cfg := Config{Backoff: Backoff{Initial: time.Minute, Factor: 2, Max: time.Hour}}
	b := NewBook()
	if d := b.Decide("a", cfg, 0); d.Verdict != Allow {
		t.Fatal(d)
	}
	if d := b.Decide("b", cfg, s); d.Verdict != Allow {
		t.Fatalf("b refused because of a: %+v", d)
	}
	if d := b.Decide("a", cfg, 2*s); d.Verdict != RefuseBackoff {
		t.Fatalf("a allowed inside its window: %+v", d)
	}
}

func TestNextAllowedAndSnapshot(t *testing.T) {
	cfg := Config{
		Backoff: Backoff{Initial: 2 * time.Second, Factor: 2, Max: time.Minute},
		GiveUp:  GiveUp{After: 2, Within: time.Minute, RetryAfter: 10 * time.Second},
	}
	never := Config{GiveUp: GiveUp{After: 1, Within: time.Minute, Never: true}}
	b := NewBook()
	cfgOf := func(name string) Config {
		if name == "perm" {
			return never
		}
		return cfg
	}
	if at, ok := b.NextAllowed("web", cfg, 5*s); !ok || at != 5*s {
		t.Fatalf("unknown service: %d %v", at, ok)
	}
	b.Decide("web", cfg, 0)
	if at, ok := b.NextAllowed("web", cfg, s); !ok || at != 2*s {
		t.Fatalf("in backoff: %d %v", at, ok)
	}
	snap := b.Snapshot(s, cfgOf)
	if len(snap) != 1 || snap[0].Phase != PhaseBackoff || snap[0].BackoffUntil != 2*s || snap[0].Attempts != 1 || snap[0].Recoveries != 1 {
		t.Fatalf("snapshot %+v", snap)
	}
	if d := b.Decide("web", cfg, 3*s); !d.GaveUp {
		t.Fatalf("second recovery did not give up: %+v", d)
	}
	b.Decide("perm", never, 3*s)
	snap = b.Snapshot(4*s, cfgOf)
	if len(snap) != 2 || snap[0].Service != "perm" || snap[0].Phase != PhaseGaveUp || snap[0].GaveUpUntil != 0 ||
		snap[1].Phase != PhaseGaveUp || snap[1].GaveUpAt != 3*s || snap[1].GaveUpUntil != 13*s || snap[1].GaveUps != 1 {
		t.Fatalf("snapshot %+v", snap)
	}
	if at, ok := b.NextAllowed("web", cfg, 4*s); !ok || at != 13*s {
		t.Fatalf("gave up: %d %v", at, ok)
	}
	if _, ok := b.NextAllowed("perm", never, 4*s); ok {
		t.Fatal("a permanent give-up has a next time")
	}
	// retry_after passing is visible without a new decision.
	if snap := b.Snapshot(13*s, cfgOf); snap[1].Phase != PhaseOK {
		t.Fatalf("after retry_after: %+v", snap[1])
	}
	b.Retain(func(name string) bool { return name != "perm" })
	if snap := b.Snapshot(13*s, cfgOf); len(snap) != 1 || snap[0].Service != "web" {
		t.Fatalf("after Retain: %+v", snap)
	}
}

func TestDelay(t *testing.T) {
	b := Backoff{Initial: 10 * time.Second, Factor: 2, Max: 5 * time.Minute}
	for n, want := range map[int]time.Duration{0: 0, 1: 10 * time.Second, 2: 20 * time.Second, 5: 160 * time.Second, 6: 5 * time.Minute, 1000: 5 * time.Minute} {
		if got := b.Delay(n); got != want {
			t.Errorf("Delay(%d) = %v, want %v", n, got, want)
		}
	}
	if (Backoff{}).Delay(3) != 0 {
		t.Error("no backoff has a delay")
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero", Config{}, true},
		{"max below initial", Config{Backoff: Backoff{Initial: time.Minute, Max: time.Second, Factor: 2}}, false},
		{"factor below 1", Config{Backoff: Backoff{Initial: time.Second, Max: time.Minute, Factor: 0.5}}, false},
		{"negative reset", Config{Backoff: Backoff{ResetAfter: -1}}, false},
		{"give up without window", Config{GiveUp: GiveUp{After: 3, RetryAfter: time.Second}}, false},
		{"give up without retry", Config{GiveUp: GiveUp{After: 3, Within: time.Minute}}, false},
		{"give up never", Config{GiveUp: GiveUp{After: 3, Within: time.Minute, Never: true}}, true},
	} {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
