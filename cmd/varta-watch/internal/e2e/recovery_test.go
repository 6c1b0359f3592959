package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
	"github.com/varta-go/varta/pkg/audit"
)

// recordArg switches the test binary into a recovery program: it appends
// one JSON line {argv, env} to OUT, writes N bytes to stdout and sleeps.
// Usage: recordArg OUT SLEEP_MS STDOUT_BYTES ARGS...
const recordArg = "varta-e2e-record"

type recording struct {
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
}

func runRecord(args []string) int {
	if len(args) < 3 {
		return 2
	}
	out, _ := json.Marshal(recording{Argv: os.Args, Env: os.Environ()})
	f, err := os.OpenFile(args[0], os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o666)
	if err != nil {
		return 1
	}
	f.Write(append(out, '\n'))
	f.Close()
	n, _ := strconv.Atoi(args[2])
	os.Stdout.Write(bytes.Repeat([]byte("x"), n))
	ms, _ := strconv.Atoi(args[1])
	time.Sleep(time.Duration(ms) * time.Millisecond)
	return 0
}

func readRecordings(t *testing.T, path string) []recording {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []recording
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r recording
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("recording %q: %v", l, err)
		}
		out = append(out, r)
	}
	return out
}

// readAudit parses the audit file's records.
func readAudit(t *testing.T, path string) []audit.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []audit.Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "#") {
			continue
		}
		r, err := audit.ParseLine(sc.Bytes())
		if err != nil {
			continue // a line being written; the caller polls again
		}
		out = append(out, r)
	}
	return out
}

func waitAudit(t *testing.T, path string, what string, match func([]audit.Record) bool) []audit.Record {
	t.Helper()
	var recs []audit.Record
	if !testsupport.Poll(20*time.Second, func() bool { recs = readAudit(t, path); return match(recs) }) {
		var b strings.Builder
		for _, r := range recs {
			fmt.Fprintf(&b, "\n  %+v", r)
		}
		t.Fatalf("timed out after 20s waiting for %s; the audit log has:%s", what, b.String())
	}
	return recs
}

func ofKind(recs []audit.Record, k audit.Kind) []audit.Record {
	var out []audit.Record
	for _, r := range recs {
		if r.Kind == k {
			out = append(out, r)
		}
	}
	return out
}

func refusals(recs []audit.Record, reason string) int {
	n := 0
	for _, r := range ofKind(recs, audit.KindRefused) {
		if r.Refused.Reason == reason {
			n++
		}
	}
	return n
}

// verifyAudit runs the real varta-audit verify on path.
func verifyAudit(t *testing.T, path string) {
	t.Helper()
	out, err := exec.Command(auditPath, "verify", path).CombinedOutput()
	if err != nil {
		t.Fatalf("varta-audit verify %s: %v\n%s", path, err, out)
	}
}

// recoveryDaemon starts varta-watch with a recovery command built from
// the test binary's record mode.
type recoveryEnv struct {
	dir, out, audit string
}

func newRecoveryEnv(t *testing.T) recoveryEnv {
	dir := newDir(t)
	return recoveryEnv{dir: dir, out: filepath.Join(dir, "recorded.jsonl"), audit: filepath.Join(dir, "audit.log")}
}

func (r recoveryEnv) exec(sleepMs, stdoutBytes int, extra string) string {
	return fmt.Sprintf("%s %s %s %d %d %s", agentPath, recordArg, r.out, sleepMs, stdoutBytes, extra)
}

func TestRecoveryRunsOnceWithPidAndCleanEnvironment(t *testing.T) {
	t.Parallel()
	r := newRecoveryEnv(t)
	d := startIn(t, r.dir, []string{"SECRET_OF_DAEMON=1"}, "--threshold-ms", "200",
		"--recovery-exec", r.exec(0, 0, "{pid} a;b $(x) |{pid}|` &&"),
		"--recovery-env", "FOO=bar", "--recovery-env", "EMPTY=",
		"--recovery-debounce-ms", "60000",
		"--recovery-audit-file", r.audit)
	// Beat, stall, beat again, stall again: the second stall of the same
	// process (this test's) falls inside the debounce window. The second
	// beat is sent once the first stall was recovered: a daemon starved on
	// a loaded machine reads both beats before it decides any stall.
	pid := os.Getpid()
	spid := strconv.Itoa(pid)
	s := d.dial()
	s.beat(1)
	waitAudit(t, r.audit, "spawn and complete", func(rs []audit.Record) bool {
		return len(ofKind(rs, audit.KindSpawn)) == 1 && len(ofKind(rs, audit.KindComplete)) == 1
	})
	s.beat(2)
	recs := waitAudit(t, r.audit, "spawn, complete and a debounced refusal", func(rs []audit.Record) bool {
		return len(ofKind(rs, audit.KindSpawn)) == 1 && len(ofKind(rs, audit.KindComplete)) == 1 && refusals(rs, "debounced") == 1
	})
	rec := readRecordings(t, r.out)
	if len(rec) != 1 {
		t.Fatalf("recovery ran %d times, want once", len(rec))
	}
	want := []string{agentPath, recordArg, r.out, "0", "0", spid, "a;b", "$(x)", "|" + spid + "|`", "&&"}
	if strings.Join(rec[0].Argv, "\x00") != strings.Join(want, "\x00") {
		t.Fatalf("argv %q\nwant %q", rec[0].Argv, want)
	}
	if strings.Join(rec[0].Env, " ") != "PATH=/usr/bin:/bin FOO=bar EMPTY=" {
		t.Fatalf("child environment %q", rec[0].Env)
	}
	sp := ofKind(recs, audit.KindSpawn)[0].Spawn
	if sp.AgentPid != uint32(pid) || sp.Program != agentPath || sp.Source != "inline" || sp.TemplateLen != uint64(len(strings.Join(want, " "))) {
		t.Fatalf("spawn record %+v", sp)
	}
	co := ofKind(recs, audit.KindComplete)[0].Complete
	if co.Outcome != audit.OutcomeReaped || co.ExitCode != 0 || co.Signal != 0 || co.ChildPid != sp.ChildPid {
		t.Fatalf("complete record %+v", co)
	}
	if b := ofKind(recs, audit.KindBoot); len(b) != 1 || b[0].Boot.Reason != audit.BootFresh {
		t.Fatalf("boot records %+v", b)
	}
	if code := d.Stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
	verifyAudit(t, r.audit)
}

func TestRecoveryBareProgramNameUsesChildPath(t *testing.T) {
	t.Parallel()
	r := newRecoveryEnv(t)
	bin := filepath.Join(r.dir, "childbin")
	os.Mkdir(bin, 0o755)
	if err := testsupport.CopyExecutable(agentPath, filepath.Join(bin, "varta-e2e-recover")); err != nil {
		t.Fatal(err)
	}
	d := startIn(t, r.dir, nil, "--threshold-ms", "200",
		"--recovery-exec", fmt.Sprintf("varta-e2e-recover %s %s 0 0 {pid}", recordArg, r.out),
		"--recovery-env", "PATH="+bin, "--recovery-audit-file", r.audit)
	d.agent(context.Background(), "self", "1", 30*time.Second, nil)
	waitAudit(t, r.audit, "complete", func(rs []audit.Record) bool { return len(ofKind(rs, audit.KindComplete)) == 1 })
	if rec := readRecordings(t, r.out); len(rec) != 1 || rec[0].Argv[0] != "varta-e2e-recover" {
		t.Fatalf("recordings %+v", rec)
	}
}

func TestRecoveryInFlightChildDebouncesSecondStall(t *testing.T) {
	t.Parallel()
	r := newRecoveryEnv(t)
	d := startIn(t, r.dir, nil, "--threshold-ms", "200", "--recovery-debounce-ms", "0",
		"--recovery-exec", r.exec(5000, 0, "{pid}"), "--recovery-audit-file", r.audit)
	// Beat, stall (the child runs for 5 s), beat again, stall again.
	s := d.dial()
	s.beat(1)
	waitAudit(t, r.audit, "the first spawn", func(rs []audit.Record) bool { return len(ofKind(rs, audit.KindSpawn)) == 1 })
	s.beat(2)
	recs := waitAudit(t, r.audit, "outstanding_in_flight refusal", func(rs []audit.Record) bool {
		return refusals(rs, "outstanding_in_flight") == 1
	})
	if n := len(ofKind(recs, audit.KindSpawn)); n != 1 {
		t.Fatalf("%d spawns, want 1", n)
	}
}

func TestRecoveryTimeoutKillsChild(t *testing.T) {
	t.Parallel()
	r := newRecoveryEnv(t)
	d := startIn(t, r.dir, nil, "--threshold-ms", "200", "--recovery-timeout-ms", "300",
		"--recovery-exec", r.exec(30000, 0, "{pid}"), "--recovery-audit-file", r.audit)
	d.agent(context.Background(), "self", "1", 30*time.Second, nil)
	recs := waitAudit(t, r.audit, "killed child", func(rs []audit.Record) bool { return len(ofKind(rs, audit.KindComplete)) == 1 })
	co := ofKind(recs, audit.KindComplete)[0].Complete
	if co.Outcome != audit.OutcomeKilled || co.Signal != 9 || co.ExitCode != audit.NoExitCode {
		t.Fatalf("complete %+v", co)
	}
	if co.DurationNs < uint64(300*time.Millisecond) {
		t.Fatalf("killed after %v, before the timeout", time.Duration(co.DurationNs))
	}
	assertGone(t, int(co.ChildPid))
}

func TestRecoveryCaptureCountsAndTruncates(t *testing.T) {
	t.Parallel()
	r := newRecoveryEnv(t)
	d := startIn(t, r.dir, nil, "--threshold-ms", "200", "--recovery-capture-stdio", "--recovery-capture-bytes", "100",
		"--recovery-exec", r.exec(0, 5000, "{pid}"), "--recovery-audit-file", r.audit)
	d.agent(context.Background(), "self", "1", 30*time.Second, nil)
	recs := waitAudit(t, r.audit, "complete", func(rs []audit.Record) bool { return len(ofKind(rs, audit.KindComplete)) == 1 })
	co := ofKind(recs, audit.KindComplete)[0].Complete
	if co.StdoutLen != 100 || co.StderrLen != 0 || !co.Truncated {
		t.Fatalf("capture: %+v", co)
	}
}

func TestRecoveryMissingProgramDoesNotConsumeDebounce(t *testing.T) {
	t.Parallel()
	r := newRecoveryEnv(t)
	d := startIn(t, r.dir, nil, "--threshold-ms", "200", "--recovery-debounce-ms", "60000",
		"--recovery-exec", filepath.Join(r.dir, "no-such-program")+" {pid}", "--recovery-audit-file", r.audit)
	// Beat, stall, beat again, stall again.
	s := d.dial()
	s.beat(1)
	waitAudit(t, r.audit, "a spawn_failed refusal", func(rs []audit.Record) bool { return refusals(rs, "spawn_failed") == 1 })
	s.beat(2)
	recs := waitAudit(t, r.audit, "two spawn_failed refusals", func(rs []audit.Record) bool { return refusals(rs, "spawn_failed") == 2 })
	if refusals(recs, "debounced") != 0 || len(ofKind(recs, audit.KindSpawn)) != 0 {
		t.Fatalf("records %+v", recs)
	}
}

func TestRecoveryOutstandingCapacityRefusal(t *testing.T) {
	t.Parallel()
	r := newRecoveryEnv(t)
	// Capacity 1: the first agent's child is still running when the second
	// agent (which evicted the first) stalls.
	prom, token, tf := promArgs(t, r.dir)
	d := startIn(t, r.dir, nil, append([]string{"--threshold-ms", "50", "--tracker-capacity", "1", "--tracker-eviction-policy", "balanced",
		"--recovery-exec", r.exec(30000, 0, "{pid}"), "--recovery-audit-file", r.audit}, prom...)...)
	d.usePromAddr(token, tf)
	d.agent(context.Background(), "self", "1", 30*time.Second, nil)
	waitAudit(t, r.audit, "first spawn", func(rs []audit.Record) bool { return len(ofKind(rs, audit.KindSpawn)) == 1 })
	// The second agent beats until its frames are admitted (once the first
	// agent, silent for more than 10 × threshold, may be evicted), then
	// stops beating without exiting, so that it stalls.
	second, pid := d.agent(context.Background(), "self", "every:20ms", 0, nil)
	d.WaitEvents(10*time.Second, "the second agent's first beat", func(e []event) bool {
		return len(testsupport.Filter(e, "beat", strconv.Itoa(pid))) >= 1
	})
	second.Process.Signal(syscall.SIGSTOP)
	recs := waitAudit(t, r.audit, "outstanding_capacity refusal", func(rs []audit.Record) bool { return refusals(rs, "outstanding_capacity") == 1 })
	if len(ofKind(recs, audit.KindSpawn)) != 1 {
		t.Fatal("a second child was spawned over capacity")
	}
	if len(readRecordings(t, r.out)) != 1 {
		t.Fatal("the refused recovery ran")
	}
	d.waitMetric(`varta_recovery_refused_total{reason="outstanding_capacity"}`, 1)
	d.waitMetric(`varta_recovery_outcomes_total{outcome="refused_outstanding_capacity"}`, 1)
	d.waitMetric(`varta_recovery_outcomes_total{outcome="spawned"}`, 1)
}

func TestRecoveryShutdownKillsChildAndAudits(t *testing.T) {
	t.Parallel()
	r := newRecoveryEnv(t)
	d := startIn(t, r.dir, nil, "--threshold-ms", "200", "--shutdown-grace-ms", "2000",
		"--recovery-exec", r.exec(60000, 0, "{pid}"), "--recovery-audit-file", r.audit)
	d.agent(context.Background(), "self", "1", 30*time.Second, nil)
	recs := waitAudit(t, r.audit, "spawn", func(rs []audit.Record) bool { return len(ofKind(rs, audit.KindSpawn)) == 1 })
	child := int(ofKind(recs, audit.KindSpawn)[0].Spawn.ChildPid)
	// While the child runs, the daemon has no zombie children.
	assertNoZombies(t, d.Cmd.Process.Pid)
	began := time.Now()
	if code := d.Stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Fatalf("shutdown took %v", took)
	}
	recs = readAudit(t, r.audit)
	co := ofKind(recs, audit.KindComplete)
	if len(co) != 1 || co[0].Complete.Outcome != audit.OutcomeKilled || co[0].Complete.Signal != 9 {
		t.Fatalf("complete records %+v", co)
	}
	assertGone(t, child)
	verifyAudit(t, r.audit)
}

// TestRecoveryShutdownRefusesQueuedStalls: 60 agents stall at once; the
// spawn bucket (burst 16, 16/s; docs/recovery.md §3) starts no more children
// than it allows and defers the rest, and SIGTERM comes while stalls are
// still deferred.
// In the real audit log every stall has exactly one decision record: a
// spawn, or a refused record with reason shutdown (docs/recovery.md §5);
// the chain verifies.
func TestRecoveryShutdownRefusesQueuedStalls(t *testing.T) {
	t.Parallel()
	const agents = 60
	r := newRecoveryEnv(t)
	d := startIn(t, r.dir, nil, "--threshold-ms", "1000", "--shutdown-grace-ms", "5000",
		"--recovery-exec", "/bin/sleep 600 {pid}", "--recovery-audit-file", r.audit)
	var cmds []*exec.Cmd
	pids := map[uint32]bool{}
	for range agents {
		c := beatAgent(t, d.Socket, 100*time.Millisecond)
		cmds = append(cmds, c)
		pids[uint32(c.Process.Pid)] = true
	}
	d.WaitEvents(30*time.Second, "a beat from every agent", func(e []event) bool {
		for _, c := range cmds {
			if len(testsupport.Filter(e, "beat", strconv.Itoa(c.Process.Pid))) == 0 {
				return false
			}
		}
		return true
	})
	// Hang them all within a few milliseconds: the stalls come due together.
	stopped := time.Now()
	for _, c := range cmds {
		if err := c.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	// Once every stall is in the events file the runner has seen them all;
	// at 16 spawns a second most are still deferred.
	d.WaitEvents(30*time.Second, "a stall of every agent", func(e []event) bool {
		return len(testsupport.Filter(e, "stall", "")) >= agents
	})
	// No stall was decided before the agents stopped, so the bucket allows
	// at most its burst plus the rate times the time until SIGTERM.
	maxSpawns := 16 + int(16*time.Since(stopped).Seconds()) + 1
	if code := d.Stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d:\n%s", code, d.Stderr.String())
	}
	recs := readAudit(t, r.audit)
	decided := map[uint32]string{}
	decide := func(pid uint32, what string) {
		if !pids[pid] {
			t.Fatalf("%s record for pid %d, not one of the agents", what, pid)
		}
		if prev, ok := decided[pid]; ok {
			t.Fatalf("pid %d has two decision records: %s and %s", pid, prev, what)
		}
		decided[pid] = what
	}
	spawned, shutdown := 0, 0
	for _, rec := range recs {
		switch rec.Kind {
		case audit.KindSpawn:
			decide(rec.Spawn.AgentPid, "spawn")
			spawned++
		case audit.KindRefused:
			if rec.Refused.Reason != "shutdown" {
				t.Fatalf("refused record %+v, want reason shutdown", rec.Refused)
			}
			decide(rec.Refused.AgentPid, "refused shutdown")
			shutdown++
		}
	}
	if len(decided) != agents {
		t.Fatalf("%d of %d stalls have a decision record (%d spawns, %d refused at shutdown)", len(decided), agents, spawned, shutdown)
	}
	if spawned > maxSpawns {
		t.Fatalf("%d children started; the spawn bucket allows at most %d by SIGTERM", spawned, maxSpawns)
	}
	if shutdown == 0 {
		t.Fatalf("all %d stalls were spawned before SIGTERM: no stall was still deferred", spawned)
	}
	if co := ofKind(recs, audit.KindComplete); len(co) != spawned {
		t.Fatalf("%d complete records for %d spawns", len(co), spawned)
	}
	t.Logf("%d stalls: %d spawned, %d refused with reason shutdown", agents, spawned, shutdown)
	verifyAudit(t, r.audit)
}

func TestCrossNamespaceAgentNeverRecovered(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CLONE_NEWPID) to create an agent in another pid namespace")
	}
	r := newRecoveryEnv(t)
	d := startIn(t, r.dir, nil, "--threshold-ms", "200",
		"--recovery-exec", r.exec(0, 0, "{pid}"), "--recovery-audit-file", r.audit)
	_, pid := d.agent(context.Background(), "outer", "1", 30*time.Second, &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID})
	evs := d.WaitEvents(10*time.Second, "namespace_conflict", func(e []event) bool { return len(testsupport.Filter(e, "mismatch", strconv.Itoa(pid))) == 1 })
	if m := testsupport.Filter(evs, "mismatch", strconv.Itoa(pid))[0]; m.Payload != "namespace_conflict" {
		t.Fatalf("mismatch %+v", m)
	}
	time.Sleep(600 * time.Millisecond)
	if recs := readAudit(t, r.audit); len(ofKind(recs, audit.KindSpawn)) != 0 || len(readRecordings(t, r.out)) != 0 {
		t.Fatal("recovery ran for a cross-namespace agent")
	}

	// With --strict-namespace-check the first such sender stops the daemon.
	d2 := start(t, "--threshold-ms", "200", "--strict-namespace-check")
	d2.agent(context.Background(), "outer", "1", 30*time.Second, &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID})
	select {
	case <-d2.Done:
	case <-time.After(15 * time.Second):
		t.Fatal("strict namespace check did not stop the daemon")
	}
	if code := d2.Cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(d2.Stderr.String(), "namespace") {
		t.Fatalf("exit %d: %s", code, d2.Stderr.String())
	}
}

// assertGone fails if pid still exists (as a process or a zombie).
func assertGone(t *testing.T, pid int) {
	t.Helper()
	testsupport.Eventually(t, 5*time.Second, fmt.Sprintf("pid %d to disappear", pid), func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		return errors.Is(err, os.ErrNotExist)
	})
}

// assertNoZombies fails if parent has a zombie child.
func assertNoZombies(t *testing.T, parent int) {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[0] == "Z" && f[1] == strconv.Itoa(parent) {
			t.Fatalf("zombie child %s of %d", e.Name(), parent)
		}
	}
}
