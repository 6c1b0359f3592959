package control

import (
	"bytes"
	"flag"
	"path/filepath"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	testsupport.CheckGolden(t, filepath.Join("testdata", "golden", name), got, *update, "-update")
}

func TestRenderGolden(t *testing.T) {
	until := testNow.Add(30 * time.Minute)
	agents := []Agent{
		{Pid: 10, Service: "web", Unit: "nginx.service", State: StateOK, LastBeatAgeMs: 120, Beats: 5012, Origin: "kernel"},
		{Pid: 30, Service: "web", Unit: "nginx.service", State: StateSnoozed, LastBeatAgeMs: 4210, Beats: 88, Stalls: 1, Origin: "kernel",
			Snoozed: &SnoozeRef{Target: "web", Until: until, Reason: "deploy 4711"}},
		{Pid: 31, Service: "importer", Unit: "-", State: StateStalled, LastBeatAgeMs: 185_000, Beats: 12, Stalls: 3, Recoveries: 2, Origin: "kernel"},
		{Pid: 77, Service: "pid:77", Unit: "-", State: StateCritical, LastBeatAgeMs: 2 * 3600_000, Beats: 1, Origin: "udp",
			Snoozed: &SnoozeRef{Target: "pid:77", Forever: true, Reason: "broken disk"}},
		{Pid: 99, Service: "evil\x1b[2J", Unit: "-", State: StateDegraded, LastBeatAgeMs: 3 * 86400_000, Beats: 2, Origin: "kernel"},
	}
	var b bytes.Buffer
	if err := RenderAgents(&b, agents, time.UTC); err != nil {
		t.Fatal(err)
	}
	golden(t, "agents.txt", b.Bytes())

	services := []Service{
		{Name: "importer", Agents: map[string]int{StateStalled: 1}, LastRecovery: testNow.Add(-time.Minute)},
		{Name: "web", Agents: map[string]int{StateOK: 1, StateSnoozed: 1}, Snoozed: &SnoozeRef{Target: "web", Until: until, Reason: "deploy 4711"}},
		{Name: "billing", Agents: map[string]int{}, BackoffUntil: testNow.Add(10 * time.Second), GaveUpUntil: testNow.Add(time.Hour)},
	}
	b.Reset()
	if err := RenderServices(&b, services, time.UTC); err != nil {
		t.Fatal(err)
	}
	golden(t, "services.txt", b.Bytes())

	b.Reset()
	RenderAgents(&b, nil, time.UTC)
	RenderServices(&b, nil, time.UTC)
	if b.String() != "no agents\nno services\n" {
		t.Fatalf("empty: %q", b.String())
	}
}

func TestAge(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0ms"},
		{0, "0ms"},
		{850 * time.Millisecond, "850ms"},
		{12340 * time.Millisecond, "12.3s"},
		{4*time.Minute + 5*time.Second, "4m05s"},
		{3*time.Hour + 12*time.Minute, "3h12m"},
		{52 * time.Hour, "2d04h"},
	}
	for _, tc := range tests {
		if got := Age(tc.d); got != tc.want {
			t.Errorf("Age(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
