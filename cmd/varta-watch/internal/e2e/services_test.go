package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
	"github.com/varta-go/varta/pkg/audit"
	"github.com/varta-go/varta/pkg/vlp"
)

// restartArg switches the test binary into the service's recovery
// program: restartArg LOG SOCKET CGROUP UNIT PID kills PID (unless 0),
// moves itself into the cgroup directory CGROUP and starts a new hanging
// agent there (hangArg, its own session), then appends one JSON line
// {unit, killed, started} to LOG and exits 0.
const restartArg = "varta-e2e-restart"

// hangArg switches the test binary into a service that hangs: hangArg
// SOCKET COMM renames itself to COMM (unless empty), sends two beats 50 ms
// apart and then stays alive without beating.
const hangArg = "varta-e2e-hang"

type restartLine struct {
	Unit    string `json:"unit"`
	Killed  int    `json:"killed"`
	Started int    `json:"started"`
}

func runRestart(args []string) int {
	if len(args) != 5 {
		return 2
	}
	log, socket, cg, unitName, pidArg := args[0], args[1], args[2], args[3], args[4]
	killed, _ := strconv.Atoi(pidArg)
	if killed > 0 {
		syscall.Kill(killed, syscall.SIGKILL)
	}
	if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cmd := exec.Command(os.Args[0], hangArg, socket, "")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	b, _ := json.Marshal(restartLine{Unit: unitName, Killed: killed, Started: cmd.Process.Pid})
	f, err := os.OpenFile(log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return 1
	}
	f.Write(append(b, '\n'))
	f.Close()
	return 0
}

func runHang(args []string) int {
	if len(args) != 2 {
		return 2
	}
	if args[1] != "" {
		name, err := unix.BytePtrFromString(args[1])
		if err != nil {
			return 1
		}
		if err := unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(name)), 0, 0, 0); err != nil {
			return 1
		}
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: args[0], Net: "unixgram"})
	if err != nil {
		return 1
	}
	for n := uint64(1); n <= 2; n++ {
		f := vlp.Frame{Status: vlp.StatusOk, Pid: uint32(os.Getpid()), Nonce: n}
		b := f.Marshal()
		c.Write(b[:])
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(10 * time.Minute)
	return 0
}

// cgroup2Dir creates a cgroup v2 directory named like a systemd scope, or
// skips the test where no writable cgroup v2 is mounted.
func cgroup2Dir(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Skipf("skipping: no /proc/self/mountinfo: %v (needs a writable cgroup v2)", err)
	}
	mnt := ""
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if f := strings.Fields(pre); ok && strings.HasPrefix(post, "cgroup2 ") && len(f) >= 5 && f[3] == "/" {
			mnt = f[4]
			break
		}
	}
	if mnt == "" {
		t.Skip("skipping: no cgroup v2 mount (needs a writable cgroup v2)")
	}
	dir := filepath.Join(mnt, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("skipping: cgroup v2 at %s is not writable: %v", mnt, err)
	}
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			procs, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			for _, p := range strings.Fields(string(procs)) {
				pid, _ := strconv.Atoi(p)
				syscall.Kill(pid, syscall.SIGKILL)
			}
			err := os.Remove(dir)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("remove %s: %v", dir, err)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	return dir
}

func readRestarts(t *testing.T, path string) []restartLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []restartLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l restartLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("restart log line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

// jsonEvents reads the JSON events file.
func jsonEvents(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, _ := os.ReadFile(path)
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("events line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// TestServiceRestartBudget is the show case of docs/services.md: a service
// (a real process in its own cgroup, named like a systemd scope) that hangs
// after every restart is recovered at t, t+1 s and t+3 s, each time with a
// new pid, then gives up loudly, and is recovered again 5 s later. The
// recovery argument {unit} carries the agent's unit; an agent that named
// itself -rf is refused with identity_unsafe.
func TestServiceRestartBudget(t *testing.T) {
	// Not parallel: it measures the recovery backoff to 700 ms.
	unitName := fmt.Sprintf("varta-e2e-%d.scope", os.Getpid())
	cg := cgroup2Dir(t, unitName)
	// Restarted agents outlive their recovery child: make this process
	// their parent so that they are reaped (no zombie left behind).
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	dir := newDir(t)
	restarts := filepath.Join(dir, "restarts.log")
	auditFile := filepath.Join(dir, "audit.log")
	pol := filepath.Join(dir, "policy.yml")
	policy := fmt.Sprintf(`rules:
  - name: web
    match: {unit: %q}
    threshold: 500ms
    recovery: [%q, %q, %q, %q, %q, "{unit}", "{pid}"]
    backoff: {initial: 1s, factor: 2, max: 4s}
    give_up: {after: 3, within: 1m, retry_after: 5s}
  - name: evil
    match: {comm: "-rf"}
    threshold: 500ms
    recovery: ["/bin/echo", "{comm}"]
`, unitName, agentPath, restartArg, restarts, filepath.Join(dir, "varta.sock"), cg)
	if err := os.WriteFile(pol, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	args, token, tf := promArgs(t, dir)
	d := startIn(t, dir, nil, append(args, "--threshold-ms", "5000", "--policy-file", pol,
		"--recovery-audit-file", auditFile, "--export-format", "json")...)
	d.usePromAddr(token, tf)
	t.Cleanup(func() {
		for _, r := range readRestarts(t, restarts) {
			syscall.Kill(r.Started, syscall.SIGKILL)
			var ws syscall.WaitStatus
			syscall.Wait4(r.Started, &ws, 0, nil)
		}
		unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	})

	// The service's first process, started the way its recovery starts it.
	if out, err := exec.Command(agentPath, restartArg, restarts, d.Socket, cg, unitName, "0").CombinedOutput(); err != nil {
		t.Fatalf("start the service: %v: %s", err, out)
	}
	// A process that calls itself -rf, matched by the evil rule.
	evil := exec.Command(agentPath, hangArg, d.Socket, "-rf")
	if err := evil.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { evil.Process.Kill(); evil.Wait() })

	spawns := func(recs []audit.Record) []audit.Record { return ofKind(recs, audit.KindSpawn) }
	waitAudit(t, auditFile, "three recoveries of web", func(r []audit.Record) bool { return len(spawns(r)) >= 3 })
	testsupport.Eventually(t, 3*time.Second, "varta_service_gave_up{service=\"web\"} = 1", func() bool {
		return d.metric(`varta_service_gave_up{service="web"}`) == 1
	})
	// While web has given up, its hung agent is listed as gave_up by the
	// operator command (polled until the retry).
	stopPoll, sawGaveUp := make(chan struct{}), make(chan bool, 1)
	go func() {
		seen := false
		defer func() { sawGaveUp <- seen }()
		for {
			select {
			case <-stopPoll:
				return
			default:
			}
			out, err := exec.Command(binPath, "agents", "--socket", d.Socket, "--service", "web", "--state", "gave_up", "--format", "json").Output()
			if err == nil && strings.Contains(string(out), `"state": "gave_up"`) {
				seen = true
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	recs := waitAudit(t, auditFile, "the recovery after retry_after", func(r []audit.Record) bool { return len(spawns(r)) >= 4 })
	close(stopPoll)
	if !<-sawGaveUp {
		t.Errorf("varta-watch agents never listed web's hung agent as gave_up while the service had given up")
	}
	testsupport.Eventually(t, 3*time.Second, "varta_service_gave_up{service=\"web\"} = 0", func() bool {
		return d.metric(`varta_service_gave_up{service="web"}`) == 0
	})

	sp := spawns(recs)[:4]
	at := func(i int) time.Duration { return time.Duration(sp[i].Spawn.ObserverNs - sp[0].Spawn.ObserverNs) }
	// t, t+1 s, t+3 s, then retry_after 5 s after giving up at t+3 s. Never
	// early; late by at most the scheduling slack of a loaded machine.
	for i, want := range []time.Duration{0, time.Second, 3 * time.Second, 8 * time.Second} {
		if got := at(i); got < want || got > want+700*time.Millisecond {
			t.Errorf("recovery %d at t+%v, want t+%v", i+1, got, want)
		}
	}
	for _, s := range sp {
		if s.Spawn.Program != agentPath || s.Spawn.Source != pol+"#web" {
			t.Errorf("spawn record %+v", s.Spawn)
		}
	}
	// Every recovery restarted the service with a new pid: the agent pid of
	// each spawn is the process the previous recovery started.
	var rs []restartLine
	testsupport.Eventually(t, 5*time.Second, "the fourth recovery's restart", func() bool {
		rs = readRestarts(t, restarts)
		return len(rs) >= 5
	})
	if len(rs) < 5 {
		t.Fatalf("%d restarts logged, want at least 5", len(rs))
	}
	seen := map[int]bool{}
	for i, r := range rs[:5] {
		if r.Unit != unitName {
			t.Errorf("restart %d: {unit} = %q, want %q", i, r.Unit, unitName)
		}
		if seen[r.Started] {
			t.Errorf("pid %d started twice", r.Started)
		}
		seen[r.Started] = true
		if i > 0 && (r.Killed != rs[i-1].Started || uint32(r.Killed) != sp[i-1].Spawn.AgentPid) {
			t.Errorf("restart %d killed %d; the previous restart started %d, the spawn was for %d", i, r.Killed, rs[i-1].Started, sp[i-1].Spawn.AgentPid)
		}
	}
	// Inside the windows, stalls were refused: backoff between the first
	// three recoveries, gave_up between the third and the fourth.
	var backoff, gaveUp int
	for _, r := range ofKind(recs, audit.KindRefused) {
		ns := r.Refused.ObserverNs
		switch r.Refused.Reason {
		case "backoff:web":
			if ns < sp[0].Spawn.ObserverNs || ns > sp[2].Spawn.ObserverNs {
				t.Errorf("backoff refusal outside the backoff windows: %+v", r.Refused)
			}
			backoff++
		case "gave_up:web":
			if ns < sp[2].Spawn.ObserverNs || ns > sp[3].Spawn.ObserverNs {
				t.Errorf("gave_up refusal outside the gave_up window: %+v", r.Refused)
			}
			gaveUp++
		}
	}
	if backoff < 2 || gaveUp < 1 {
		t.Errorf("%d backoff and %d gave_up refusals, want at least 2 and 1", backoff, gaveUp)
	}
	// identity_unsafe for the agent named -rf.
	recs = waitAudit(t, auditFile, "identity_unsafe refusal", func(r []audit.Record) bool {
		return refusals(r, "identity_unsafe:evil") > 0
	})
	for _, r := range ofKind(recs, audit.KindRefused) {
		if r.Refused.Reason == "identity_unsafe:evil" && r.Refused.AgentPid != uint32(evil.Process.Pid) {
			t.Errorf("identity_unsafe for pid %d, want %d", r.Refused.AgentPid, evil.Process.Pid)
		}
	}
	for _, s := range ofKind(recs, audit.KindSpawn) {
		if s.Spawn.AgentPid == uint32(evil.Process.Pid) {
			t.Errorf("recovery ran for the agent named -rf: %+v", s.Spawn)
		}
	}

	// Loud: the events file has a gave_up line naming the service and its
	// unit, the log says so, and the metrics count per service.
	var gaveUpLines, webStalls int
	for _, e := range jsonEvents(t, d.EventsFile) {
		switch {
		case e["kind"] == "gave_up" && e["service"] == "web" && e["unit"] == unitName && e["text"] == "web":
			gaveUpLines++
		case e["kind"] == "stall" && e["service"] == "web":
			webStalls++
			if e["unit"] != unitName || e["uid"] != float64(os.Geteuid()) {
				t.Errorf("stall line identity %v", e)
			}
		}
	}
	if gaveUpLines != 1 || webStalls < 4 {
		t.Errorf("%d gave_up lines and %d web stall lines, want 1 and at least 4", gaveUpLines, webStalls)
	}
	if !strings.Contains(d.Stderr.String(), "service gave up") {
		t.Error("no error log line for the give-up")
	}
	m := d.scrape()
	if m[`varta_service_recoveries_total{outcome="spawned",service="web"}`] < 4 ||
		m[`varta_service_recoveries_total{outcome="refused_gave_up",service="web"}`] < 1 ||
		m[`varta_service_recoveries_total{outcome="refused_identity_unsafe",service="evil"}`] < 1 ||
		m[`varta_stalls_surfaced_total`] < 5 || m[`varta_service_stalls_total{service="web"}`] < 4 {
		t.Errorf("metrics: %v", filterMetrics(m, "varta_service_", "varta_stalls_surfaced"))
	}
	verifyAudit(t, auditFile)

	// varta-audit summarize shows the refusals per service.
	out, err := exec.Command(auditPath, "summarize", "--format", "json", auditFile).Output()
	if err != nil {
		t.Fatalf("varta-audit summarize: %v", err)
	}
	var sum struct {
		Services []struct {
			Service        string `json:"service"`
			Spawns         uint64 `json:"spawns"`
			Backoff        uint64 `json:"refused_backoff"`
			GaveUp         uint64 `json:"refused_gave_up"`
			IdentityUnsafe uint64 `json:"refused_identity_unsafe"`
		} `json:"services"`
	}
	if err := json.Unmarshal(out, &sum); err != nil {
		t.Fatalf("summarize output %s: %v", out, err)
	}
	if len(sum.Services) != 2 {
		t.Fatalf("summarize services: %+v", sum.Services)
	}
	byName := map[string]int{}
	for i, sv := range sum.Services {
		byName[sv.Service] = i
	}
	web, evilSvc := sum.Services[byName["web"]], sum.Services[byName["evil"]]
	if web.Service != "web" || evilSvc.Service != "evil" || web.Spawns < 4 || web.Backoff < 2 || web.GaveUp < 1 || evilSvc.IdentityUnsafe < 1 {
		t.Errorf("summarize services: %+v", sum.Services)
	}
}

func filterMetrics(m map[string]float64, prefixes ...string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		for _, p := range prefixes {
			if strings.HasPrefix(k, p) {
				out[k] = v
			}
		}
	}
	return out
}

// TestPolicyFileErrors: a bad policy file is a configuration error at start
// (exit 2, naming the file, the line and the key); on SIGHUP the old policy
// stays in force, and the failed and the good reload are counted.
func TestPolicyFileErrors(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	pol := filepath.Join(dir, "policy.yml")
	write := func(body string) {
		t.Helper()
		tmp := pol + ".tmp"
		if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, pol); err != nil {
			t.Fatal(err)
		}
	}
	write("rules:\n  - name: web\n    match: {unit: nginx.service}\n    treshold: 2s\n")
	cmd := exec.Command(binPath, "--socket", filepath.Join(dir, "x.sock"), "--threshold-ms", "1000", "--policy-file", pol)
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), pol) ||
		!strings.Contains(string(out), "line 4") || !strings.Contains(string(out), "rules[0].treshold") {
		t.Fatalf("bad policy at start: exit %d (%v): %s", cmd.ProcessState.ExitCode(), err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.sock")); err == nil {
		t.Fatal("the daemon bound its socket with a bad policy")
	}

	write("rules:\n  - {name: web, match: {unit: nginx.service}, threshold: 2s}\n")
	args, token, tf := promArgs(t, dir)
	d := startIn(t, dir, nil, append(args, "--threshold-ms", "1000", "--policy-file", pol)...)
	d.usePromAddr(token, tf)
	write("rules:\n  - {name: web, match: {unit: nginx.service}, threshold: soon}\n")
	d.Cmd.Process.Signal(syscall.SIGHUP)
	testsupport.Eventually(t, 10*time.Second, "a failed reload", func() bool {
		return d.metric(`varta_policy_reloads_total{result="failed"}`) == 1
	})
	if !strings.Contains(d.Stderr.String(), "rules[0].threshold") {
		t.Errorf("the reload error is not logged with its key:\n%s", d.Stderr.String())
	}
	write("rules:\n  - {name: web, match: {unit: nginx.service}, threshold: 3s}\n")
	d.Cmd.Process.Signal(syscall.SIGHUP)
	testsupport.Eventually(t, 10*time.Second, "a good reload", func() bool {
		return d.metric(`varta_policy_reloads_total{result="ok"}`) == 1
	})
	if code := d.Stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d after the reloads", code)
	}
}
