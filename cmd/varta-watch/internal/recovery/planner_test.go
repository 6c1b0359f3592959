package recovery

import (
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/pkg/audit"
)

// fakePlanner answers per pid and records what it was asked.
type fakePlanner struct {
	plans map[uint32]Plan
	asked []uint32
}

func (p *fakePlanner) Plan(s Stall, now uint64) Plan {
	p.asked = append(p.asked, s.Pid)
	return p.plans[s.Pid]
}

func TestPlannerRunsAfterTheGates(t *testing.T) {
	fp := &fakePlanner{plans: map[uint32]Plan{
		10: {Refuse: audit.ReasonBackoff, Service: "web"},
		11: {Refuse: audit.ReasonIdentityUnsafe, Service: "web"},
		12: {Skip: true, Service: "importer"},
		13: {Service: "other-unit.service"}, // no argv: the command line's program
	}}
	clk := &fakeClock{ns: uint64(time.Hour)}
	h := newHarness(t, Options{Program: "/bin/sleep", Args: []string{"60"}, Planner: fp}, clk.now)
	for _, tc := range []struct {
		stall Stall
		want  string // "" = no record
	}{
		{Stall{Pid: 10, Origin: sockMode}, "socket_mode_only"}, // gate first, planner not asked
		{Stall{Pid: 10, Generation: 1, Origin: kernel}, "backoff:web"},
		{Stall{Pid: 11, Generation: 1, Origin: kernel}, "identity_unsafe:web"},
		{Stall{Pid: 12, Generation: 1, Origin: kernel}, ""},
		{Stall{Pid: 13, Generation: 1, Origin: kernel}, "spawn"},
	} {
		n := len(h.a.events)
		h.r.Submit(tc.stall)
		h.r.Tick()
		switch {
		case tc.want == "" && len(h.a.events) != n:
			t.Fatalf("pid %d: records %q, want none", tc.stall.Pid, h.a.events[n:])
		case tc.want != "" && (len(h.a.events) != n+1 || h.lastEvent() != tc.want):
			t.Fatalf("pid %d: records %q, want %q", tc.stall.Pid, h.a.events[n:], tc.want)
		}
	}
	if !reflect.DeepEqual(fp.asked, []uint32{10, 11, 12, 13}) {
		t.Fatalf("planner asked about %v", fp.asked)
	}
	if r := h.a.refused[1]; r.Service != "web" || r.AgentPid != 10 {
		t.Fatalf("refused record %+v", r)
	}
	if s := h.a.spawns[0]; s.Program != "/bin/sleep" || s.Source != "inline" || s.Service != "other-unit.service" {
		t.Fatalf("spawn record %+v", s)
	}
	outcomes, _ := outcomeCounts(h.c)
	if want := map[string]uint64{
		"refused_backoff": 1, "refused_identity_unsafe": 1, "spawned": 1, "refused_socket_mode_only": 1,
	}; !maps.Equal(outcomes, want) {
		t.Errorf("outcomes %v, want %v", outcomes, want)
	}
}

// TestPlannerArgv: the plan's argument list runs instead of the command
// line's (which may be empty), without a shell, and its service reaches the
// spawn and complete records.
func TestPlannerArgv(t *testing.T) {
	prog := helperPath(t)
	out := filepath.Join(t.TempDir(), "dump.json")
	argv := []string{prog, "restart", "nginx.service", "-", "a b"}
	fp := &fakePlanner{plans: map[uint32]Plan{7: {Argv: argv, Source: "/etc/varta/policy.yml#web", Service: "web"}}}
	h := newHarness(t, Options{Planner: fp, Env: []string{helperEnv + "=dump", noRaceSleep, outEnv + "=" + out}}, realClock())
	h.r.Submit(Stall{Pid: 7, Generation: 1, Origin: kernel})
	h.r.Tick()
	if h.lastEvent() != "spawn" {
		t.Fatalf("decision %q", h.lastEvent())
	}
	h.tickUntil(t, "the child to finish", func() bool { return len(h.a.completes) == 1 })
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var d dump
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d.Args, argv) {
		t.Fatalf("argv %q, want %q", d.Args, argv)
	}
	s, c := h.a.spawns[0], h.a.completes[0]
	if s.Program != prog || s.Source != "/etc/varta/policy.yml#web" || s.Service != "web" || s.TemplateLen != uint64(len(prog)+len(" restart nginx.service - a b")) {
		t.Fatalf("spawn record %+v", s)
	}
	if c.Service != "web" || c.ExitCode != 0 {
		t.Fatalf("complete record %+v", c)
	}
	if h.r.InFlight(7, 1) {
		t.Fatal("InFlight after the child finished")
	}

	// Without a plan's argv and without a command-line program, nothing runs.
	h.r.Submit(Stall{Pid: 8, Generation: 1, Origin: kernel})
	h.r.Tick()
	if len(h.a.events) != 1 {
		t.Fatalf("records %q", h.a.events)
	}
}

func TestEmptyProgramNeedsAPlanner(t *testing.T) {
	_, err := New(Options{}, newFakeVerifier(), &fakeAuditor{}, stats.New(), (&fakeClock{}).now)
	if !errors.Is(err, ErrEmptyCommand) {
		t.Fatalf("err %v", err)
	}
}

func TestInFlight(t *testing.T) {
	h := newHarness(t, Options{Program: "/bin/sleep", Args: []string{"60"}}, realClock())
	h.r.Submit(Stall{Pid: 9, Generation: 3, Origin: kernel})
	h.r.Tick()
	if !h.r.InFlight(9, 3) || !h.r.InFlight(9, 0) || h.r.InFlight(9, 4) || h.r.InFlight(10, 3) {
		t.Fatal("InFlight")
	}
}
