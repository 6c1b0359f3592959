package summary

import (
	"testing"
	"time"

	"github.com/varta-go/varta/pkg/audit"
)

func TestBuilder(t *testing.T) {
	b := NewBuilder("x.log")
	recs := []audit.Record{
		{Kind: audit.KindBoot, Boot: audit.BootRecord{WallclockMs: 1000, DaemonPid: 1, Reason: audit.BootFresh}},
		{Kind: audit.KindSpawn, Spawn: audit.SpawnRecord{WallclockMs: 2000, AgentPid: 7}},
		{Kind: audit.KindComplete, Complete: audit.CompleteRecord{WallclockMs: 3000, AgentPid: 7, Outcome: audit.OutcomeReaped, ExitCode: 0, DurationNs: 100}},
		{Kind: audit.KindSpawn, Spawn: audit.SpawnRecord{WallclockMs: 4000, AgentPid: 7}},
		{Kind: audit.KindComplete, Complete: audit.CompleteRecord{WallclockMs: 5000, AgentPid: 7, Outcome: audit.OutcomeReaped, ExitCode: 3, DurationNs: 300}},
		{Kind: audit.KindSpawn, Spawn: audit.SpawnRecord{WallclockMs: 6000, AgentPid: 7}},
		{Kind: audit.KindComplete, Complete: audit.CompleteRecord{WallclockMs: 7000, AgentPid: 7, Outcome: audit.OutcomeKilled, ExitCode: audit.NoExitCode, Signal: 9, DurationNs: 200}},
		{Kind: audit.KindComplete, Complete: audit.CompleteRecord{WallclockMs: 7500, AgentPid: 7, Outcome: audit.OutcomeReaped, ExitCode: audit.NoExitCode, Signal: 15, DurationNs: 400}},
		{Kind: audit.KindComplete, Complete: audit.CompleteRecord{WallclockMs: 7600, AgentPid: 7, Outcome: audit.OutcomeReapFailed, ExitCode: audit.NoExitCode, DurationNs: 99999}},
		{Kind: audit.KindRefused, Refused: audit.RefusedRecord{WallclockMs: 8000, AgentPid: 7, Reason: "debounced"}},
		{Kind: audit.KindRefused, Refused: audit.RefusedRecord{WallclockMs: 8500, AgentPid: 3, Reason: "debounced"}},
		{Kind: audit.KindBoot, Boot: audit.BootRecord{WallclockMs: 9000, DaemonPid: 2, Reason: audit.BootResume}},
		{Kind: audit.KindBoot, Boot: audit.BootRecord{WallclockMs: 9500, DaemonPid: 2, Reason: audit.BootRotation}},
	}
	for i := range recs {
		b.Add(&recs[i])
	}
	s := b.Finish(&audit.Report{Verdict: audit.VerdictIntact, LostRecords: 4})
	if len(s.Agents) != 2 || s.Agents[0].Pid != 3 || s.Agents[1].Pid != 7 {
		t.Fatalf("agents %+v", s.Agents)
	}
	a := s.Agents[1]
	want := Agent{Pid: 7, Stalls: 4, Spawns: 3, ReapedZero: 1, ReapedNonzero: 1, Signalled: 1, Killed: 1, ReapFailed: 1,
		P50: 200, P95: 400, Max: 400}
	if a.Stalls != want.Stalls || a.Spawns != want.Spawns || a.ReapedZero != 1 || a.ReapedNonzero != 1 || a.Signalled != 1 ||
		a.Killed != 1 || a.ReapFailed != 1 || a.P50 != want.P50 || a.P95 != want.P95 || a.Max != want.Max || a.Refusals["debounced"] != 1 {
		t.Fatalf("agent 7 = %+v, want %+v", *a, want)
	}
	tot := s.Totals
	if tot.Records != 13 || tot.Stalls != 5 || tot.Boots != 3 || tot.Restarts != 1 || tot.DaemonPids != 2 || tot.LostRecords != 4 {
		t.Fatalf("totals %+v", tot)
	}
	if s.FirstMs != 1000 || s.LastMs != 9500 {
		t.Fatalf("span %d..%d", s.FirstMs, s.LastMs)
	}
	if s.Services != nil {
		t.Fatalf("services in a log without policy records: %+v", s.Services)
	}
}

func TestServices(t *testing.T) {
	b := NewBuilder("x.log")
	recs := []audit.Record{
		{Kind: audit.KindSpawn, Spawn: audit.SpawnRecord{AgentPid: 7, Source: "/etc/varta/policy.yml#web"}},
		{Kind: audit.KindRefused, Refused: audit.RefusedRecord{AgentPid: 8, Reason: "backoff:web"}},
		{Kind: audit.KindRefused, Refused: audit.RefusedRecord{AgentPid: 9, Reason: "backoff:web"}},
		{Kind: audit.KindSpawn, Spawn: audit.SpawnRecord{AgentPid: 9, Source: "/etc/varta/policy.yml#web"}},
		{Kind: audit.KindRefused, Refused: audit.RefusedRecord{AgentPid: 10, Reason: "gave_up:web"}},
		{Kind: audit.KindRefused, Refused: audit.RefusedRecord{AgentPid: 11, Reason: "identity_unsafe:evil"}},
		{Kind: audit.KindSpawn, Spawn: audit.SpawnRecord{AgentPid: 12, Source: "inline"}},
		{Kind: audit.KindSpawn, Spawn: audit.SpawnRecord{AgentPid: 13, Source: "/etc/varta/cmd"}},
		{Kind: audit.KindRefused, Refused: audit.RefusedRecord{AgentPid: 14, Reason: "debounced"}},
		{Kind: audit.KindRefused, Refused: audit.RefusedRecord{AgentPid: 15, Reason: "future:reason"}},
	}
	for i := range recs {
		b.Add(&recs[i])
	}
	s := b.Finish(nil)
	if len(s.Services) != 2 {
		t.Fatalf("services %+v", s.Services)
	}
	if e, w := *s.Services[0], (Service{Name: "evil", IdentityUnsafe: 1}); e != w {
		t.Fatalf("evil %+v", e)
	}
	if w, want := *s.Services[1], (Service{Name: "web", Spawns: 2, Backoff: 2, GaveUp: 1}); w != want {
		t.Fatalf("web %+v, want %+v", w, want)
	}
}

func TestRank(t *testing.T) {
	tests := []struct {
		in   []uint64
		p    float64
		want time.Duration
	}{
		{nil, 0.5, 0},
		{[]uint64{5}, 0.5, 5},
		{[]uint64{1, 2, 3, 4}, 0.5, 2},
		{[]uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, 0.95, 19},
		{[]uint64{1, 2, 3}, 1, 3},
	}
	for _, tc := range tests {
		if got := rank(tc.in, tc.p); got != tc.want {
			t.Errorf("rank(%v, %v) = %v, want %v", tc.in, tc.p, got, tc.want)
		}
	}
}

// TestServiceOfReason: only the restart-budget and placeholder refusals of
// the policy file name a service for the per-service figures; a snooze,
// a reason without its service and unknown reasons do not.
func TestServiceOfReason(t *testing.T) {
	for _, tc := range []struct {
		column  string
		reason  audit.Reason
		service string
	}{
		{"backoff:web", audit.ReasonBackoff, "web"},
		{"gave_up:billing.service", audit.ReasonGaveUp, "billing.service"},
		{"identity_unsafe:evil", audit.ReasonIdentityUnsafe, "evil"},
		{"snoozed:web", audit.ReasonNone, ""},
		{"backoff:", audit.ReasonNone, ""},
		{"backoff", audit.ReasonNone, ""},
		{"debounced", audit.ReasonNone, ""},
		{"future:reason", audit.ReasonNone, ""},
	} {
		r, svc, ok := ServiceOfReason(tc.column)
		if r != tc.reason || svc != tc.service || ok != (tc.reason != audit.ReasonNone) {
			t.Errorf("ServiceOfReason(%q) = %v, %q, %v; want %v, %q", tc.column, r, svc, ok, tc.reason, tc.service)
		}
	}
}
