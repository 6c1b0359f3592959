package recovery

import (
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/pkg/audit"
)

// runDump spawns the test binary in "dump" mode for agent pid and returns
// what it saw.
func runDump(t *testing.T, opts Options, pid uint32) (dump, *harness) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "dump.json")
	opts.Env = append(opts.Env, helperEnv+"=dump", noRaceSleep, outEnv+"="+out)
	h := newHarness(t, opts, realClock())
	h.r.Submit(Stall{Pid: pid, Generation: 1, Origin: kernel})
	h.r.Tick()
	if h.lastEvent() != "spawn" {
		t.Fatalf("decision %q, want spawn", h.lastEvent())
	}
	h.tickUntil(t, "the child to finish", func() bool { return len(h.a.completes) == 1 })
	if c := h.a.completes[0]; c.Outcome != audit.OutcomeReaped || c.ExitCode != 0 {
		t.Fatalf("helper failed: %+v", c)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var d dump
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d, h
}

func TestArgvWithoutShell(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"no arguments", nil, nil},
		{"metacharacters stay literal",
			[]string{"a;b", "$(x)", "{pid}|{pid}", "`id`", ">", "/tmp/nowhere", "&&", "*", "'q'", `"d"`, "$HOME"},
			[]string{"a;b", "$(x)", "4242|4242", "`id`", ">", "/tmp/nowhere", "&&", "*", "'q'", `"d"`, "$HOME"}},
		{"every occurrence substituted", []string{"--pid={pid}", "x{pid}y{pid}z", "{PID}", "{pid"},
			[]string{"--pid=4242", "x4242y4242z", "{PID}", "{pid"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prog := helperPath(t)
			d, h := runDump(t, Options{Program: prog, Args: tc.args}, 4242)
			want := append([]string{prog}, tc.want...)
			if !reflect.DeepEqual(d.Args, want) {
				t.Fatalf("argv %q, want %q (nothing appended)", d.Args, want)
			}
			if got, w := h.a.spawns[0].TemplateLen, uint64(len(strings.Join(want, " "))); got != w {
				t.Errorf("template_len %d, want %d", got, w)
			}
			if s := h.a.spawns[0]; s.Program != prog || s.Source != "inline" || s.AgentPid != 4242 || s.ChildPid == 0 {
				t.Errorf("spawn record %+v", s)
			}
		})
	}
}

func TestChildEnvironment(t *testing.T) {
	const dumpVars = 3 // appended by runDump
	for _, tc := range []struct {
		name    string
		env     []string
		inherit bool
		base    []string
		want    []string // before the two helper variables
	}{
		{name: "cleared to PATH", want: []string{"PATH=/usr/bin:/bin"}},
		{name: "entries in order", env: []string{"B=2", "A=1=x", "EMPTY="},
			want: []string{"PATH=/usr/bin:/bin", "B=2", "A=1=x", "EMPTY="}},
		{name: "later key overrides earlier", env: []string{"A=1", "B=2", "A=3"},
			want: []string{"PATH=/usr/bin:/bin", "A=3", "B=2"}},
		{name: "PATH overridable", env: []string{"PATH=/opt/bin"}, want: []string{"PATH=/opt/bin"}},
		{name: "daemon environment ignored without inherit", base: []string{"SECRET=x"},
			want: []string{"PATH=/usr/bin:/bin"}},
		{name: "inherit with overrides on top", inherit: true,
			base: []string{"HOME=/root", "PATH=/sbin", "A=base", "junk", "=novalue", "HOME=/home/x"},
			env:  []string{"A=over", "NEW=1"},
			want: []string{"HOME=/home/x", "PATH=/sbin", "A=over", "NEW=1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := runDump(t, Options{Program: helperPath(t), Env: tc.env, InheritEnv: tc.inherit, BaseEnv: tc.base}, 1)
			if len(d.Env) < dumpVars || !reflect.DeepEqual(d.Env[:len(d.Env)-dumpVars], tc.want) {
				t.Fatalf("child environment %q, want %q + the helper variables", d.Env, tc.want)
			}
		})
	}
}

// linkHelper puts a symlink named name to the test binary in dir.
func linkHelper(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.Symlink(helperPath(t), filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func TestProgramLookedUpInChildPath(t *testing.T) {
	childDir, parentDir := t.TempDir(), t.TempDir()
	linkHelper(t, childDir, "varta-child-only")
	linkHelper(t, parentDir, "varta-parent-only")
	t.Setenv("PATH", parentDir+string(os.PathListSeparator)+os.Getenv("PATH"))

	t.Run("found in the child's PATH", func(t *testing.T) {
		d, _ := runDump(t, Options{Program: "varta-child-only", Args: []string{"{pid}"}, Env: []string{"PATH=" + childDir}}, 9)
		if want := []string{"varta-child-only", "9"}; !reflect.DeepEqual(d.Args, want) {
			t.Fatalf("argv %q, want %q", d.Args, want)
		}
	})
	t.Run("not in the daemon's PATH", func(t *testing.T) {
		h := newHarness(t, Options{Program: "varta-parent-only"}, realClock())
		h.r.Submit(Stall{Pid: 9, Generation: 1, Origin: kernel})
		h.r.Tick()
		if h.lastEvent() != "spawn_failed" || h.c.RecoveryOutcomes[stats.Refusal(audit.ReasonSpawnFailed)].Load() != 1 {
			t.Fatalf("decision %q, want spawn_failed", h.lastEvent())
		}
	})
	t.Run("relative PATH entries skipped", func(t *testing.T) {
		if _, err := lookPath("varta-child-only", "."+string(os.PathListSeparator)+"rel"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("lookPath: %v, want ErrNotFound", err)
		}
	})
}

func TestSpawnFailedDoesNotConsumeDebounce(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(t.TempDir(), "dump.json")
	clk := &fakeClock{ns: uint64(time.Hour)}
	h := newHarness(t, Options{Program: "varta-late", Env: []string{"PATH=" + dir, helperEnv + "=dump", noRaceSleep, outEnv + "=" + out}}, clk.now)
	s := Stall{Pid: 5, Generation: 1, Origin: kernel}
	h.r.Submit(s)
	h.r.Tick()
	if h.lastEvent() != "spawn_failed" || h.r.Outstanding() != 0 {
		t.Fatalf("decision %q, want spawn_failed", h.lastEvent())
	}
	linkHelper(t, dir, "varta-late") // the operator installs the program
	h.r.Submit(s)                    // same process, same instant
	h.r.Tick()
	if h.lastEvent() != "spawn" {
		t.Fatalf("decision %q after a failed spawn, want spawn", h.lastEvent())
	}
	h.tickUntil(t, "the child to finish", func() bool { return len(h.a.completes) == 1 })
	if _, err := os.Stat(out); err != nil {
		t.Fatalf("the program did not run: %v", err)
	}
	if got := h.c.RecoveryOutcomes[stats.Refusal(audit.ReasonSpawnFailed)].Load(); got != 1 {
		t.Errorf("spawn_failed = %d", got)
	}
}

func TestCompleteStatus(t *testing.T) {
	helper := helperPath(t)
	for _, tc := range []struct {
		name    string
		opts    Options
		code    int
		signal  int
		outcome stats.Outcome
	}{
		{"exit zero", Options{Program: "/bin/true"}, 0, 0, stats.OutcomeReapedZero},
		{"exit one", Options{Program: "false"}, 1, 0, stats.OutcomeReapedNonzero},
		{"exit three", Options{Program: helper, Args: []string{"0", "0", "3"}, Env: []string{helperEnv + "=write", noRaceSleep}}, 3, 0, stats.OutcomeReapedNonzero},
		{"death by a foreign signal", Options{Program: helper, Env: []string{helperEnv + "=signal", noRaceSleep}}, -1, 15, stats.OutcomeReapedNonzero},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.opts, realClock())
			h.r.Submit(Stall{Pid: 1, Generation: 1, Origin: kernel})
			h.r.Tick()
			h.tickUntil(t, "the child to finish", func() bool { return len(h.a.completes) == 1 })
			c := h.a.completes[0]
			if c.Outcome != audit.OutcomeReaped || c.ExitCode != tc.code || c.Signal != tc.signal || c.ChildPid != h.a.spawns[0].ChildPid || c.AgentPid != 1 {
				t.Fatalf("complete %+v, want reaped code %d signal %d", c, tc.code, tc.signal)
			}
			if c.DurationNs == 0 {
				t.Errorf("duration %v", c.DurationNs)
			}
			if h.c.RecoveryOutcomes[tc.outcome].Load() != 1 {
				t.Errorf("outcome %s not counted", tc.outcome.Label())
			}
			if n, _, _ := h.c.RecoveryDuration.Snapshot(); n != 1 {
				t.Errorf("duration observations %d, want 1", n)
			}
			assertGone(t, c.ChildPid)
		})
	}
}

func TestTimeoutKills(t *testing.T) {
	h := newHarness(t, Options{Program: "/bin/sleep", Args: []string{"60"}, Timeout: MinTimeout}, realClock())
	h.r.Submit(Stall{Pid: 1, Generation: 1, Origin: kernel})
	h.r.Tick()
	start := time.Now()
	h.tickUntil(t, "the timeout", func() bool { return len(h.a.completes) == 1 })
	c := h.a.completes[0]
	if c.Outcome != audit.OutcomeKilled || c.Signal != 9 || c.ExitCode != -1 {
		t.Fatalf("complete %+v, want killed signal 9", c)
	}
	if d := time.Duration(c.DurationNs); d < MinTimeout || time.Since(start) > time.Second {
		t.Errorf("killed after %v (record %v), want about %v", time.Since(start), d, MinTimeout)
	}
	if h.c.RecoveryOutcomes[stats.OutcomeKilled].Load() != 1 {
		t.Error("killed not counted")
	}
	assertGone(t, c.ChildPid)
}

func TestCapture(t *testing.T) {
	helper := helperPath(t)
	for _, tc := range []struct {
		name            string
		out, err, limit int
		wantOut         uint64
		wantErr         uint64
		truncated       bool
	}{
		{"below the cap", 100, 50, 0, 100, 50, false},
		{"exactly the cap", 4000, 96, 0, 4000, 96, false},
		{"stdout over the cap", 10000, 0, 0, 4096, 0, true},
		{"combined over the cap", 3000, 3000, 0, 3000, 1096, true},
		{"more than a pipe buffer", 300000, 1, MaxCaptureBytes, 300000, 1, false},
		{"cap of one byte", 1, 1, 1, 1, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Options{
				Program: helper, Args: []string{itoa(tc.out), itoa(tc.err), "0"},
				Env: []string{helperEnv + "=write", noRaceSleep}, CaptureStdio: true, CaptureBytes: tc.limit,
			}, realClock())
			h.r.Submit(Stall{Pid: 1, Generation: 1, Origin: kernel})
			h.r.Tick()
			h.tickUntil(t, "the child to finish", func() bool { return len(h.a.completes) == 1 })
			c := h.a.completes[0]
			if c.StdoutLen != tc.wantOut || c.StderrLen != tc.wantErr || c.Truncated != tc.truncated {
				t.Fatalf("captured %d/%d truncated=%v, want %d/%d truncated=%v (%+v)",
					c.StdoutLen, c.StderrLen, c.Truncated, tc.wantOut, tc.wantErr, tc.truncated, c)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestSpawnBudget(t *testing.T) {
	h := newHarness(t, Options{Program: "/bin/true"}, realClock())
	for pid := uint32(100); pid < 120; pid++ {
		h.r.Submit(Stall{Pid: pid, Generation: 1, Origin: kernel})
	}
	h.r.Tick()
	if len(h.a.spawns) != DefaultSpawnBurst || h.r.Pending() != 20-DefaultSpawnBurst {
		t.Fatalf("tick 1: %d spawned, %d pending; want 16, 4", len(h.a.spawns), h.r.Pending())
	}
	// The other four wait for tokens (16/s): about a quarter of a second.
	h.tickUntil(t, "the deferred stalls to spawn", func() bool { return len(h.a.spawns) == 20 && h.r.Pending() == 0 })
	h.tickUntil(t, "all children to be reaped", func() bool { return h.r.Outstanding() == 0 })
	if got := h.c.RecoveryOutcomes[stats.OutcomeReapedZero].Load(); got != 20 {
		t.Fatalf("reaped_zero = %d", got)
	}
}

func TestReapRotation(t *testing.T) {
	// Agent pid 1's child sleeps; the others exit at once. With one reap
	// per tick, a fixed start would visit the sleeper forever.
	h := newHarness(t, Options{
		Program: helperPath(t), Args: []string{"{pid}"}, Env: []string{helperEnv + "=sleepif", noRaceSleep}, MaxReapsPerTick: 1,
	}, realClock())
	for pid := uint32(1); pid <= 3; pid++ {
		h.r.Submit(Stall{Pid: pid, Generation: 1, Origin: kernel})
	}
	h.r.Tick()
	for _, s := range h.a.spawns[1:] {
		waitZombie(t, s.ChildPid)
	}
	for i := 1; i <= 2; i++ {
		h.r.Tick()
		if len(h.a.completes) > i {
			t.Fatalf("tick %d reaped %d children, limit is 1 per tick", i, len(h.a.completes))
		}
	}
	h.tickUntil(t, "both short children to be reaped", func() bool { return len(h.a.completes) == 2 })
	if h.r.Outstanding() != 1 || h.r.kids[0].agentPid != 1 {
		t.Fatal("the sleeping child should be the one left")
	}
}

// waitZombie waits until pid has exited (and awaits reaping).
func waitZombie(t *testing.T, pid uint32) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile("/proc/" + itoa(int(pid)) + "/stat")
		if err != nil {
			t.Skip("no /proc")
		}
		s := string(b)
		if f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]); len(f) > 0 && f[0] == "Z" {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("child %d did not exit", pid)
}

func TestRecycledPidKillsOldChild(t *testing.T) {
	h := newHarness(t, Options{Program: "/bin/sleep", Args: []string{"60"}}, realClock())
	h.r.Submit(Stall{Pid: 77, Generation: 1, Origin: kernel})
	h.r.Tick()
	h.r.Submit(Stall{Pid: 77, Generation: 2, Origin: kernel}) // a new process got pid 77
	h.r.Tick()
	if len(h.a.spawns) != 2 {
		t.Fatalf("events %q: the new process must be recovered at once", h.a.events)
	}
	old, cur := h.a.spawns[0].ChildPid, h.a.spawns[1].ChildPid
	h.tickUntil(t, "the old child to be reaped", func() bool { return len(h.a.completes) == 1 })
	c := h.a.completes[0]
	if c.ChildPid != old || c.Outcome != audit.OutcomeKilled || c.Signal != 9 || c.AgentPid != 77 {
		t.Fatalf("complete %+v, want old child %d killed", c, old)
	}
	assertGone(t, old)
	if h.r.Outstanding() != 1 || uint32(h.r.kids[0].pid) != cur {
		t.Fatal("the new process's child must still run")
	}
	// The new child is in flight for generation 2.
	h.r.Submit(Stall{Pid: 77, Generation: 2, Origin: kernel})
	h.r.Tick()
	if h.lastEvent() != "debounced" {
		t.Fatalf("decision %q", h.lastEvent())
	}
}

func TestShutdownKillsChildren(t *testing.T) {
	h := newHarness(t, Options{Program: "/bin/sleep", Args: []string{"60"}, CaptureStdio: true}, realClock())
	h.r.Submit(Stall{Pid: 1, Generation: 1, Origin: kernel})
	h.r.Submit(Stall{Pid: 2, Generation: 1, Origin: kernel})
	h.r.Tick()
	// A long grace: Shutdown must return as soon as the killed children
	// are reaped, not wait the grace out.
	start := time.Now()
	h.r.Shutdown(30 * time.Second)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Shutdown took %v: it waited for the grace instead of the children", took)
	}
	if h.r.Outstanding() != 0 || len(h.a.completes) != 2 {
		t.Fatalf("outstanding %d, completes %d", h.r.Outstanding(), len(h.a.completes))
	}
	for _, c := range h.a.completes {
		if c.Outcome != audit.OutcomeKilled || c.Signal != 9 {
			t.Errorf("complete %+v, want killed signal 9", c)
		}
		assertGone(t, c.ChildPid)
	}
	n := len(h.a.events)
	h.r.Submit(Stall{Pid: 3, Generation: 1, Origin: kernel})
	h.r.Tick()
	if len(h.a.events) != n {
		t.Fatal("a shut-down runner must decide nothing")
	}
}

func TestKillReachesTheProcessGroup(t *testing.T) {
	out := filepath.Join(t.TempDir(), "grandchild")
	h := newHarness(t, Options{
		Program: helperPath(t), Env: []string{helperEnv + "=fork", noRaceSleep, outEnv + "=" + out}, Timeout: MinTimeout,
	}, realClock())
	h.r.Submit(Stall{Pid: 1, Generation: 1, Origin: kernel})
	h.r.Tick()
	h.tickUntil(t, "the timeout", func() bool { return len(h.a.completes) == 1 })
	if c := h.a.completes[0]; c.Outcome != audit.OutcomeKilled {
		t.Fatalf("complete %+v", c)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("the child did not start its own child: %v", err)
	}
	// The grandchild was orphaned; whoever reaps orphans here may leave
	// it a zombie, but it must not be running.
	deadline := time.Now().Add(time.Second)
	for {
		st, err := os.ReadFile("/proc/" + string(b) + "/stat")
		if err != nil {
			return
		}
		s := string(st)
		if f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]); len(f) > 0 && f[0] == "Z" {
			return
		}
		if time.Now().After(deadline) {
			syscall.Kill(atoi(string(b)), syscall.SIGKILL)
			t.Fatalf("grandchild %s survived SIGKILL of the group: %s", b, s)
		}
		time.Sleep(time.Millisecond)
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func TestSpawnFailureLoggedOnce(t *testing.T) {
	var buf strings.Builder
	log := slog.New(slog.NewTextHandler(&buf, nil))
	h := newHarness(t, Options{Program: "/nonexistent/varta-recovery", Logger: log}, realClock())
	for pid := uint32(1); pid <= 3; pid++ {
		h.r.Submit(Stall{Pid: pid, Generation: 1, Origin: kernel})
	}
	h.r.Tick()
	if got := h.c.RecoveryOutcomes[stats.Refusal(audit.ReasonSpawnFailed)].Load(); got != 3 {
		t.Fatalf("spawn_failed = %d", got)
	}
	if n := strings.Count(buf.String(), "recovery spawn failed"); n != 1 || !strings.Contains(buf.String(), "/nonexistent/varta-recovery") {
		t.Fatalf("log %q: want one line naming the program", buf.String())
	}
}

// TestReapFailedCounted: a child that cannot be reaped (here another waiter
// took its exit status, so wait4 fails with ECHILD) gets a complete record
// with outcome reap_failed and counts in the reap_failed outcome.
func TestReapFailedCounted(t *testing.T) {
	h := newHarness(t, Options{Program: "/bin/true"}, realClock())
	h.r.Submit(Stall{Pid: 1, Generation: 1, Origin: kernel})
	h.r.Tick()
	if len(h.a.spawns) != 1 {
		t.Fatalf("%d spawns", len(h.a.spawns))
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(int(h.a.spawns[0].ChildPid), &ws, 0, nil); err != nil {
		t.Fatal(err)
	}
	h.tickUntil(t, "the complete record", func() bool { return len(h.a.completes) == 1 })
	if c := h.a.completes[0]; c.Outcome != audit.OutcomeReapFailed {
		t.Fatalf("complete %+v, want reap_failed", c)
	}
	if got := h.c.RecoveryOutcomes[stats.OutcomeReapFailed].Load(); got != 1 {
		t.Fatalf("reap_failed outcomes = %d, want 1", got)
	}
	if n, _, _ := h.c.RecoveryDuration.Snapshot(); n != 0 {
		t.Fatalf("%d durations observed for a child not seen to finish", n)
	}
}
