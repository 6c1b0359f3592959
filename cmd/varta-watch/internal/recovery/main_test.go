package recovery

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/pkg/audit"
)

// The test binary doubles as the recovery program: when helperEnv is set
// in its environment it acts as a small child program instead of running
// tests. The runner builds the child environment from scratch, so tests
// pass helperEnv through Options.Env.
const (
	helperEnv = "VARTA_RECOVERY_TEST_HELPER"
	outEnv    = "VARTA_RECOVERY_TEST_OUT"
	// noRaceSleep stops a race-enabled helper from sleeping 1 s at exit.
	noRaceSleep = "GORACE=atexit_sleep_ms=0"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helperMain(mode))
	}
	os.Exit(m.Run())
}

// dump is what the "dump" helper writes.
type dump struct {
	Args []string
	Env  []string
}

func helperMain(mode string) int {
	switch mode {
	case "dump": // write argv and environment as JSON to $OUT
		b, _ := json.Marshal(dump{Args: os.Args, Env: os.Environ()})
		if err := os.WriteFile(os.Getenv(outEnv), b, 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 111
		}
		return 0
	case "write": // args: stdout-bytes stderr-bytes exit-code
		nOut, _ := strconv.Atoi(os.Args[1])
		nErr, _ := strconv.Atoi(os.Args[2])
		code, _ := strconv.Atoi(os.Args[3])
		os.Stdout.Write([]byte(strings.Repeat("o", nOut)))
		os.Stderr.Write([]byte(strings.Repeat("e", nErr)))
		return code
	case "signal": // die by SIGTERM
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
		time.Sleep(10 * time.Second)
		return 0
	case "fork": // start /bin/sleep 60 in our process group, write its pid to $OUT, sleep
		p, err := os.StartProcess("/bin/sleep", []string{"sleep", "60"}, &os.ProcAttr{})
		if err != nil {
			return 113
		}
		if err := os.WriteFile(os.Getenv(outEnv), []byte(strconv.Itoa(p.Pid)), 0o600); err != nil {
			return 114
		}
		time.Sleep(60 * time.Second)
		return 0
	case "sleepif": // args: agent-pid; sleep 60 s if it is "1", else exit 0
		if os.Args[1] == "1" {
			time.Sleep(60 * time.Second)
		}
		return 0
	}
	return 112
}

// helperPath returns the test binary's path.
func helperPath(t *testing.T) string {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Records as the fake auditor keeps them: pkg/audit's record and the note.
type (
	spawnRec struct {
		audit.SpawnRecord
		Note
	}
	completeRec struct {
		audit.CompleteRecord
		Note
	}
	refusedRec struct {
		audit.RefusedRecord
		Service string
		Why     audit.Reason
	}
)

// fakeAuditor records every record in order.
type fakeAuditor struct {
	spawns    []spawnRec
	completes []completeRec
	refused   []refusedRec
	events    []string // "spawn" or the refused reason, in decision order
}

func (a *fakeAuditor) Spawn(s audit.SpawnRecord, n Note) {
	a.spawns = append(a.spawns, spawnRec{s, n})
	a.events = append(a.events, "spawn")
}
func (a *fakeAuditor) Complete(c audit.CompleteRecord, n Note) {
	a.completes = append(a.completes, completeRec{c, n})
}
func (a *fakeAuditor) Refused(r audit.RefusedRecord, n Note) {
	if r.Reason != n.Reason.Column(n.Service) {
		panic("refused record " + r.Reason + " does not match its note " + n.Reason.Column(n.Service))
	}
	a.refused = append(a.refused, refusedRec{r, n.Service, n.Reason})
	a.events = append(a.events, r.Reason)
}

func (a *fakeAuditor) complete(childPid uint32) (completeRec, bool) {
	for _, c := range a.completes {
		if c.ChildPid == childPid {
			return c, true
		}
	}
	return completeRec{}, false
}

// fakeVerifier answers per pid (VerdictFresh by default) and counts calls.
type fakeVerifier struct {
	verdicts map[uint32]Verdict
	calls    map[uint32]int
}

func newFakeVerifier() *fakeVerifier {
	return &fakeVerifier{verdicts: map[uint32]Verdict{}, calls: map[uint32]int{}}
}

func (v *fakeVerifier) Verify(s Stall) Verdict {
	v.calls[s.Pid]++
	if d, ok := v.verdicts[s.Pid]; ok {
		return d
	}
	return VerdictFresh
}

// fakeClock is a settable observer clock.
type fakeClock struct{ ns uint64 }

func (c *fakeClock) now() uint64             { return c.ns }
func (c *fakeClock) advance(d time.Duration) { c.ns += uint64(d) }

// realClock returns a monotonic observer clock starting near 1 s.
func realClock() func() uint64 {
	start := time.Now()
	return func() uint64 { return uint64(time.Second + time.Since(start)) }
}

type harness struct {
	r *Runner
	a *fakeAuditor
	v *fakeVerifier
	c *stats.Counters
}

// newHarness builds a Runner and registers a cleanup that shuts it down,
// checks that every spawned child got a complete record and that none of
// them is left behind (no zombie, no running child).
func newHarness(t *testing.T, opts Options, now func() uint64) *harness {
	t.Helper()
	h := &harness{a: &fakeAuditor{}, v: newFakeVerifier(), c: stats.New()}
	r, err := New(opts, h.v, h.a, h.c, now)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.r = r
	t.Cleanup(func() {
		r.Shutdown(2 * time.Second)
		if r.Outstanding() != 0 {
			t.Errorf("after Shutdown: %d outstanding", r.Outstanding())
		}
		for _, s := range h.a.spawns {
			if _, ok := h.a.complete(s.ChildPid); !ok {
				t.Errorf("child %d has no complete record", s.ChildPid)
			}
			assertGone(t, s.ChildPid)
		}
	})
	return h
}

// assertGone fails if pid is still a child of this process in /proc
// (running or a zombie).
func assertGone(t *testing.T, pid uint32) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return // gone (or no /proc on this system)
	}
	s := string(b)
	rest := s[strings.LastIndexByte(s, ')')+2:]
	f := strings.Fields(rest)
	if len(f) > 1 && f[1] == strconv.Itoa(os.Getpid()) {
		t.Errorf("child %d still exists, state %s", pid, f[0])
	}
}

// tickUntil ticks the runner every millisecond until cond holds.
func (h *harness) tickUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		h.r.Tick()
		time.Sleep(time.Millisecond)
	}
}

func (h *harness) lastEvent() string {
	if len(h.a.events) == 0 {
		return ""
	}
	return h.a.events[len(h.a.events)-1]
}
