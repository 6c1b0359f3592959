package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/control"
	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
	"github.com/varta-go/varta/pkg/vlp"
)

// cli runs the real varta-watch binary as a client (attr may run it under
// another uid) and returns stdout, stderr and the exit code.
func cli(t testing.TB, attr *syscall.SysProcAttr, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = attr
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("varta-watch %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return out.String(), errOut.String(), code
}

// udpFleet beats n claimed pids (first..first+n-1) over plain UDP every
// interval until stop is closed; pids for which silent returns true send
// the first three beats only (UDP may lose one on a loaded machine) and
// then stall, and status picks each pid's status.
func udpFleet(t *testing.T, addr string, first, n int, interval time.Duration, silent func(int) bool, status func(int) vlp.Status, stop <-chan struct{}) <-chan struct{} {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer c.Close()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for nonce := uint64(1); ; nonce++ {
			for i := 0; i < n; i++ {
				if nonce > 3 && silent(i) {
					continue
				}
				f := vlp.Frame{Status: status(i), Pid: uint32(first + i), Nonce: nonce}
				b := f.Marshal()
				c.Write(b[:])
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return done
}

// TestAgentsCommandFleet: varta-watch agents against a daemon with 200
// agents, 20 of them stalled and a few degraded or critical, prints the
// right states; the JSON form parses and the filters work.
func TestAgentsCommandFleet(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	port := testsupport.FreeUDPPort(t)
	d := startIn(t, dir, nil, "--threshold-ms", "400", "--udp-port", port, "--i-accept-plaintext-udp",
		"--udp-bind-addr", "127.0.0.1", "--max-beat-rate", "0", "--global-beat-rate", "0")
	const n, first = 200, 20000
	silent := func(i int) bool { return i%10 == 3 } // 20 stall
	status := func(i int) vlp.Status {
		switch {
		case i%10 == 5:
			return vlp.StatusDegraded
		case i%25 == 7:
			return vlp.StatusCritical
		}
		return vlp.StatusOk
	}
	stop := make(chan struct{})
	done := udpFleet(t, "127.0.0.1:"+port, first, n, 100*time.Millisecond, silent, status, stop)
	defer func() { close(stop); <-done }()

	want := map[string]string{}
	for i := 0; i < n; i++ {
		st := "ok"
		switch {
		case silent(i):
			st = "stalled"
		case status(i) == vlp.StatusDegraded:
			st = "degraded"
		case status(i) == vlp.StatusCritical:
			st = "critical"
		}
		want[strconv.Itoa(first+i)] = st
	}
	var got map[string]string
	var reply control.AgentsReply
	deadline := time.Now().Add(15 * time.Second)
	for ok := false; !ok; {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for 200 agents in their states; got %d: %v", len(got), got)
		}
		time.Sleep(50 * time.Millisecond)
		out, errOut, code := cli(t, nil, "agents", "--socket", d.Socket, "--format", "json")
		if code != 0 {
			t.Fatalf("agents --format json: exit %d: %s", code, errOut)
		}
		reply = control.AgentsReply{}
		if err := json.Unmarshal([]byte(out), &reply); err != nil {
			t.Fatalf("agents --format json does not parse: %v\n%s", err, out)
		}
		got = map[string]string{}
		for _, a := range reply.Agents {
			got[strconv.Itoa(int(a.Pid))] = a.State
		}
		ok = fmt.Sprint(got) == fmt.Sprint(want)
	}
	for _, a := range reply.Agents {
		if a.Service != "pid:"+strconv.Itoa(int(a.Pid)) || a.Origin != "network_unverified" || a.Beats == 0 {
			t.Fatalf("agent %+v", a)
		}
		if a.State == "stalled" && (a.Stalls != 1 || a.LastBeatAgeMs < 400) {
			t.Fatalf("stalled agent %+v", a)
		}
	}

	// The table: one row per agent, in pid order, with its state.
	out, errOut, code := cli(t, nil, "agents", "--socket", d.Socket)
	if code != 0 {
		t.Fatalf("agents: exit %d: %s", code, errOut)
	}
	rows := 0
	var pids []int
	for _, line := range strings.Split(out, "\n") {
		cells := strings.Split(line, "│")
		if len(cells) < 11 {
			continue
		}
		pid := strings.TrimSpace(cells[1])
		if pid == "pid" {
			continue
		}
		rows++
		pids = append(pids, atoi(pid))
		if st := strings.TrimSpace(cells[4]); st != want[pid] {
			t.Errorf("table row of %s shows %q, want %q", pid, st, want[pid])
		}
	}
	if rows != n || !slices.IsSorted(pids) {
		t.Fatalf("table has %d rows (sorted: %v), want %d:\n%s", rows, slices.IsSorted(pids), n, out)
	}

	// Filters.
	out, _, code = cli(t, nil, "agents", "--socket", d.Socket, "--state", "stalled", "--format", "json")
	var stalled control.AgentsReply
	if code != 0 || json.Unmarshal([]byte(out), &stalled) != nil || len(stalled.Agents) != 20 {
		t.Fatalf("--state stalled: exit %d, %d agents:\n%s", code, len(stalled.Agents), out)
	}
	out, _, code = cli(t, nil, "agents", "--socket", d.Socket, "--service", "pid:20003")
	if code != 0 || !strings.Contains(out, "20003") || strings.Count(out, "│ pid:") != 1 {
		t.Fatalf("--service pid:20003:\n%s", out)
	}
}

// TestControlForeignUID: a client running as another uid gets 403 (exit
// 1, counted) unless --control-allow-uid names it; the socket mode is what
// lets it knock at all.
func TestControlForeignUID(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client under another uid")
	}
	nobody := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"default mode keeps it out", nil, 1, "permission denied"},
		{"mode lets it in, uid refused", []string{"--control-socket-mode", "0666"}, 1, "403"},
		{"allowed uid", []string{"--control-socket-mode", "0666", "--control-allow-uid", "65534"}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := newDir(t)
			args, token, tf := promArgs(t, dir)
			d := startIn(t, dir, nil, append(append([]string{"--threshold-ms", "1000"}, args...), tc.args...)...)
			d.usePromAddr(token, tf)
			out, errOut, code := cli(t, nobody, "agents", "--socket", d.Socket)
			if code != tc.code || !strings.Contains(errOut, tc.msg) {
				t.Fatalf("as nobody: exit %d, stdout %q, stderr %q; want %d with %q", code, out, errOut, tc.code, tc.msg)
			}
			if tc.code == 0 && !strings.Contains(out, "no agents") {
				t.Fatalf("allowed client printed %q", out)
			}
			forbidden := d.scrape()[`varta_control_requests_total{code="403",endpoint="agents"}`]
			if want := map[bool]float64{true: 1}[tc.msg == "403"]; forbidden != want {
				t.Fatalf("403s counted: %v, want %v", forbidden, want)
			}
		})
	}
}

// TestControlDaemonUID: a daemon running as an unprivileged uid answers
// its own uid and root, and refuses a third uid with 403 naming it (the
// socket mode 0666 lets that uid connect, so the uid check is what
// refuses it).
func TestControlDaemonUID(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the daemon and its clients under other uids")
	}
	const daemonUID, otherUID = 4242, 4343
	as := func(uid uint32) *syscall.SysProcAttr {
		return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	}
	dir := newDir(t)
	if err := os.Chown(dir, daemonUID, daemonUID); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o711); err != nil { // others may reach the socket, not list or write
		t.Fatal(err)
	}
	d := testsupport.NewDaemon(t, dir)
	cmd := exec.Command(binPath, d.Args("--threshold-ms", "1000", "--control-socket-mode", "0666")...)
	cmd.SysProcAttr = as(daemonUID)
	d.Run(cmd)
	ctl := filepath.Join(dir, "control.sock")
	waitSocket(t, ctl)
	if fi, err := os.Lstat(ctl); err != nil || fi.Sys().(*syscall.Stat_t).Uid != daemonUID {
		t.Fatalf("control socket %v, %v: want it owned by the daemon's uid %d", fi, err, daemonUID)
	}
	for _, tc := range []struct {
		who  string
		attr *syscall.SysProcAttr
		code int
		msg  string
	}{
		{"the daemon's uid", as(daemonUID), 0, ""},
		{"root", nil, 0, ""},
		{"another uid", as(otherUID), 1, "uid 4343 may not use the control socket"},
	} {
		out, errOut, code := cli(t, tc.attr, "agents", "--socket", d.Socket)
		if code != tc.code || !strings.Contains(errOut, tc.msg) || tc.code == 0 && out != "no agents\n" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d with %q", tc.who, code, out, errOut, tc.code, tc.msg)
		}
	}
}

// auditLines returns the records of the audit log at path whose kind is
// kind and whose text contains sub.
func auditLines(t *testing.T, path, kind, sub string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		cols := strings.Split(l, "\t")
		if len(cols) > 4 && cols[3] == kind && strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return out
}

// TestSnoozeLifecycle: snooze the agents' service, make one stall: the
// stall is surfaced and counted but not recovered (a snoozed refusal in
// the audit log); the snooze survives a daemon restart and ends by
// itself; then the agent that stalled while snoozed is recovered, and so
// is the next stall. varta-audit verify passes on the log with its
// control records (show and summarize list them) and fails when one is
// altered.
func TestSnoozeLifecycle(t *testing.T) {
	// Not parallel: its steps must fit in an 8 s snooze window.
	dir := newDir(t)
	stateDir := filepath.Join(dir, "state")
	auditLog := filepath.Join(dir, "audit.log")
	args := []string{"--threshold-ms", "300", "--recovery-exec", "/bin/true {pid}", "--recovery-debounce-ms", "0",
		"--recovery-audit-file", auditLog, "--state-dir", stateDir}
	pa, token, tf := promArgs(t, dir)
	d := startIn(t, dir, nil, append(append([]string{}, args...), pa...)...)
	d.usePromAddr(token, tf)

	// The agents are copies of the test binary, all in this test's cgroup:
	// their service (their systemd unit if the cgroup names one, else their
	// comm "agent.test") is the same. A probe agent tells which.
	ctx := context.Background()
	probe, probePid := d.agent(ctx, "self", "1", time.Minute, nil)
	var svc string
	testsupport.Eventually(t, 5*time.Second, "the probe agent in the listing", func() bool {
		out, _, _ := cli(t, nil, "agents", "--socket", d.Socket, "--format", "json")
		var r control.AgentsReply
		json.Unmarshal([]byte(out), &r)
		for _, a := range r.Agents {
			if a.Pid == uint32(probePid) {
				svc = a.Service
			}
		}
		return svc != ""
	})
	probe.Process.Kill()
	probe.Wait()
	if svc == "-" || strings.HasPrefix(svc, "pid:") {
		t.Fatalf("a local agent has no service name: %q", svc)
	}
	const window = 8 * time.Second
	asked := time.Now()
	out, errOut, code := cli(t, nil, "snooze", svc, "--for", window.String(), "--reason", "deploy 4711", "--socket", d.Socket)
	snoozedAt := time.Now()
	if code != 0 || !strings.HasPrefix(out, "snoozed "+svc+" until ") {
		t.Fatalf("snooze: exit %d %q %s", code, out, errOut)
	}
	if m := d.scrape(); m[`varta_service_snoozed{service="`+svc+`"}`] != 1 || m[`varta_control_requests_total{code="200",endpoint="snooze"}`] != 1 {
		t.Fatalf("metrics after snooze: snoozed=%v requests=%v", m[`varta_service_snoozed{service="`+svc+`"}`], m[`varta_control_requests_total{code="200",endpoint="snooze"}`])
	}

	_, pid := d.agent(ctx, "self", "1", time.Minute, nil)
	p := strconv.Itoa(pid)
	d.WaitEvents(5*time.Second, "stall of the snoozed agent", func(evs []event) bool { return len(testsupport.Filter(evs, "stall", p)) == 1 })
	testsupport.Eventually(t, 5*time.Second, "snoozed refusal in the audit log", func() bool {
		return len(auditLines(t, auditLog, "refused", "\t"+p+"\tsnoozed:"+svc)) == 1
	})
	out, _, _ = cli(t, nil, "agents", "--socket", d.Socket, "--state", "snoozed", "--format", "json")
	var r control.AgentsReply
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("agents --format json: %v: %s", err, out)
	}
	listed := false
	for _, a := range r.Agents {
		listed = listed || a.Pid == uint32(pid) && a.Service == svc && a.Snoozed != nil && a.Snoozed.Target == svc
	}
	if !listed {
		t.Fatalf("the stalled agent %d is not listed as snoozed: %s", pid, out)
	}
	if m := d.scrape(); m[`varta_recovery_outcomes_total{outcome="refused_snoozed"}`] != 1 || m[`varta_stalls_total{pid="`+p+`"}`] != 1 {
		t.Fatalf("stall not counted as snoozed: %v %v", m[`varta_recovery_outcomes_total{outcome="refused_snoozed"}`], m[`varta_stalls_total{pid="`+p+`"}`])
	}
	// The per-service family shows the stalled agent as snoozed (and none
	// of the service's agents as stalled); varta_agents keeps the four
	// states of the compatible exposition and counts it as stalled.
	if m := d.scrape(); m[`varta_service_agents{service="`+svc+`",state="snoozed"}`] < 1 ||
		m[`varta_service_agents{service="`+svc+`",state="stalled"}`] != 0 || m[`varta_agents{state="stalled"}`] < 1 {
		t.Fatalf("service agents while snoozed: snoozed=%v stalled=%v; varta_agents stalled=%v",
			m[`varta_service_agents{service="`+svc+`",state="snoozed"}`], m[`varta_service_agents{service="`+svc+`",state="stalled"}`], m[`varta_agents{state="stalled"}`])
	}

	// Restart: the snooze is still in force.
	if c := d.Stop(syscall.SIGTERM); c != 0 {
		t.Fatalf("daemon exit %d", c)
	}
	if spawns := auditLines(t, auditLog, "spawn", "\t"+p+"\t"); len(spawns) != 0 {
		t.Fatalf("a snoozed stall was recovered: %v", spawns)
	}
	d = startIn(t, dir, nil, args...)
	out, _, code = cli(t, nil, "services", "--socket", d.Socket, "--format", "json")
	var sv control.ServicesReply
	if code != 0 || json.Unmarshal([]byte(out), &sv) != nil {
		t.Fatalf("services: %d %s", code, out)
	}
	found := false
	for _, s := range sv.Services {
		if s.Name == svc && s.Snoozed != nil && s.Snoozed.Reason == "deploy 4711" {
			found = true
		}
	}
	if !found {
		t.Fatalf("snooze lost in the restart: %s", out)
	}
	// A second agent stalls while still snoozed after the restart.
	_, pid2 := d.agent(ctx, "self", "1", time.Minute, nil)
	p2 := strconv.Itoa(pid2)
	testsupport.Eventually(t, 5*time.Second, "snoozed refusal after the restart", func() bool {
		return len(auditLines(t, auditLog, "refused", "\t"+p2+"\tsnoozed:"+svc)) == 1
	})

	// The snooze ends by itself; the next stall is recovered.
	testsupport.Eventually(t, time.Until(snoozedAt.Add(window+5*time.Second)), "the snooze to end", func() bool {
		out, _, _ := cli(t, nil, "services", "--socket", d.Socket, "--format", "json")
		return !strings.Contains(out, "deploy 4711")
	})
	if early := window - time.Since(asked); early > 0 {
		t.Fatalf("the snooze ended %v before its window", early)
	}
	// The agent that stalled while snoozed and is still silent is
	// recovered when the window ends, without a new stall.
	testsupport.Eventually(t, 5*time.Second, "recovery of the held stall after the snooze ended", func() bool {
		return len(auditLines(t, auditLog, "spawn", "\t"+p2+"\t")) == 1
	})
	_, pid3 := d.agent(ctx, "self", "1", time.Minute, nil)
	p3 := strconv.Itoa(pid3)
	testsupport.Eventually(t, 5*time.Second, "recovery after the snooze ended", func() bool {
		return len(auditLines(t, auditLog, "spawn", "\t"+p3+"\t")) == 1
	})
	// resume and reload are audited too.
	if _, errOut, code := cli(t, nil, "snooze", "pid:"+p3, "--for", "forever", "--reason", "broken disk", "--socket", d.Socket); code != 0 {
		t.Fatalf("snooze forever: %s", errOut)
	}
	if _, errOut, code := cli(t, nil, "resume", "pid:"+p3, "--reason", "fixed", "--socket", d.Socket); code != 0 {
		t.Fatalf("resume: %s", errOut)
	}
	if out, errOut, code := cli(t, nil, "reload", "--socket", d.Socket); code != 0 || out != "reload: ok\n" {
		t.Fatalf("reload: %q %s", out, errOut)
	}
	if c := d.Stop(syscall.SIGTERM); c != 0 {
		t.Fatalf("daemon exit %d", c)
	}

	controls := auditLines(t, auditLog, "control", "")
	wantActions := []string{"snooze\t" + svc, "snooze\tpid:" + p3 + "\tforever\tbroken disk", "resume\tpid:" + p3, "reload\t-\t-\tok"}
	if len(controls) != len(wantActions) {
		t.Fatalf("control records:\n%s", strings.Join(controls, "\n"))
	}
	for i, w := range wantActions {
		if !strings.Contains(controls[i], "\t0\t"+w) {
			t.Errorf("control record %d = %q, want uid 0 and %q", i, controls[i], w)
		}
	}
	verifyAudit(t, auditLog)
	// show and summarize read the same records.
	showOut, err := exec.Command(auditPath, "show", "--kind", "control", "--format", "json", auditLog).Output()
	var shown []struct{ Action, Target, Reason string }
	if err != nil || json.Unmarshal(showOut, &shown) != nil || len(shown) != 4 ||
		shown[0].Action != "snooze" || shown[0].Target != svc || shown[0].Reason != "deploy 4711" || shown[3].Action != "reload" {
		t.Fatalf("varta-audit show --kind control: %v\n%s", err, showOut)
	}
	sumOut, err := exec.Command(auditPath, "summarize", auditLog).Output()
	if err != nil || !regexp.MustCompile(`│ operator actions +│ +4 │`).Match(sumOut) {
		t.Fatalf("varta-audit summarize: %v\n%s", err, sumOut)
	}

	// Altering a control record breaks verification.
	b, _ := os.ReadFile(auditLog)
	altered := bytes.Replace(b, []byte("\tdeploy 4711\t"), []byte("\tdeploy 4712\t"), 1)
	if bytes.Equal(altered, b) {
		t.Fatal("no control record to alter")
	}
	if err := os.WriteFile(auditLog, altered, 0o600); err != nil {
		t.Fatal(err)
	}
	out2, err := exec.Command(auditPath, "verify", auditLog).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out2), "TAMPER") {
		t.Fatalf("verify of an altered control record: %v\n%s", err, out2)
	}
}

// holdControlConns opens n connections to the control socket and keeps
// them open: half are idle kept-alive connections that finished a GET
// /v1/agents, half are slow clients stuck in the middle of their request
// headers. It returns a function that closes them.
func holdControlConns(b *testing.B, path string, n int) func() {
	b.Helper()
	var conns []net.Conn
	for i := 0; i < n; i++ {
		c, err := net.Dial("unix", path)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		if i%2 == 0 {
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: varta\r\n\r\n", control.PathAgents)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 64<<10)
			// Read the reply's headers and body (small: no agents).
			var got []byte
			for !bytes.Contains(got, []byte("\r\n\r\n")) || !bytes.HasSuffix(got, []byte("}\n")) {
				k, err := c.Read(buf)
				if err != nil {
					b.Fatalf("control client %d: %v (%q)", i, err, got)
				}
				got = append(got, buf[:k]...)
			}
			if !bytes.HasPrefix(got, []byte("HTTP/1.1 200")) {
				b.Fatalf("control client %d: %q", i, got)
			}
		} else {
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: var", control.PathAgents)
		}
	}
	return func() {
		for _, c := range conns {
			c.Close()
		}
	}
}

// BenchmarkIngestWithControlClients measures Unix-socket ingest with and
// without 100 clients holding control connections open (50 idle after a
// request, 50 stuck in their request headers), alternating in the same
// run, and reports both medians and their ratio, and the daemon's CPU time
// per datagram in both phases (less sensitive to a loaded machine than the
// rates): the control server must not slow ingest down.
func BenchmarkIngestWithControlClients(b *testing.B) {
	const rounds = 7
	const perRound = 100000
	const clients = 100
	for b.Loop() {
		d := startFast(b, newDir(b), true, "--threshold-ms", "60000", "--max-beat-rate", "0", "--global-beat-rate", "0")
		ctl := filepath.Join(d.Dir, "control.sock")
		waitSocket(b, ctl)
		var without, with []float64
		var cpuWithout, cpuWith uint64
		pid := d.Cmd.Process.Pid
		for r := 0; r < rounds; r++ {
			c0 := cpuTicks(b, pid)
			t0 := time.Now()
			blast(b, d.Socket, 1, perRound)
			without = append(without, perRound/time.Since(t0).Seconds())
			cpuWithout += cpuTicks(b, pid) - c0

			release := holdControlConns(b, ctl, clients)
			c0 = cpuTicks(b, pid)
			t0 = time.Now()
			blast(b, d.Socket, 1, perRound)
			with = append(with, perRound/time.Since(t0).Seconds())
			cpuWith += cpuTicks(b, pid) - c0
			// The connections are still open: the server still serves.
			if _, errOut, code := cli(b, nil, "agents", "--socket", d.Socket, "--format", "json"); code != 0 {
				b.Fatalf("agents with %d connections held: %s", clients, errOut)
			}
			release()
		}
		for deadline := time.Now().Add(10 * time.Second); ; {
			if d.scrape()["varta_datagrams_received_total"] >= 2*rounds*perRound {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("the daemon did not receive every datagram")
			}
			time.Sleep(20 * time.Millisecond)
		}
		slices.Sort(without)
		slices.Sort(with)
		m0, m1 := without[rounds/2], with[rounds/2]
		b.ReportMetric(m0, "datagrams/s")
		b.ReportMetric(m1, "datagrams/s-100-control-conns")
		b.ReportMetric(100*m1/m0, "ratio-%")
		total := float64(rounds * perRound)
		b.ReportMetric(float64(cpuWithout)*1e7/total, "daemon-cpu-ns/datagram")
		b.ReportMetric(float64(cpuWith)*1e7/total, "daemon-cpu-ns/datagram-100-control-conns")
	}
}

// TestReloadCommand: varta-watch reload does what SIGHUP does and prints
// the result: a bad policy file is reported (exit 1, file and key named,
// the old policy kept) and audited as a control record with its error; a
// good one is reported ok.
func TestReloadCommand(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	pol := filepath.Join(dir, "policy.yml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(pol, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	auditLog := filepath.Join(dir, "audit.log")
	write("rules:\n  - {name: web, match: {unit: nginx.service}, threshold: 2s}\n")
	args, token, tf := promArgs(t, dir)
	d := startIn(t, dir, nil, append(args, "--threshold-ms", "1000", "--policy-file", pol,
		"--recovery-exec", "/bin/true", "--recovery-audit-file", auditLog)...)
	d.usePromAddr(token, tf)

	write("rules:\n  - {name: web, match: {unit: nginx.service}, threshold: soon}\n")
	out, errOut, code := cli(t, nil, "reload", "--socket", d.Socket)
	if code != 1 || out != "" || !strings.Contains(errOut, "reload failed") || !strings.Contains(errOut, pol) || !strings.Contains(errOut, "rules[0].threshold") {
		t.Fatalf("reload of a bad policy: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if m := d.scrape(); m[`varta_policy_reloads_total{result="failed"}`] != 1 || m[`varta_control_requests_total{code="422",endpoint="reload"}`] != 1 {
		t.Fatalf("failed reload not counted: %v %v", m[`varta_policy_reloads_total{result="failed"}`], m[`varta_control_requests_total{code="422",endpoint="reload"}`])
	}
	write("rules:\n  - {name: web, match: {unit: nginx.service}, threshold: 3s}\n")
	out, errOut, code = cli(t, nil, "reload", "--socket", d.Socket, "--format", "json")
	var r control.ReloadReply
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || r.Result != "ok" {
		t.Fatalf("reload of a good policy: exit %d, %q %s", code, out, errOut)
	}
	if c := d.Stop(syscall.SIGTERM); c != 0 {
		t.Fatalf("daemon exit %d", c)
	}
	reloads := auditLines(t, auditLog, "control", "\treload\t")
	if len(reloads) != 2 || !strings.Contains(reloads[0], "\terror: policy file not reloaded") || !strings.Contains(reloads[0], "rules[0].threshold") ||
		!strings.Contains(reloads[1], "\t-\t-\tok\t") {
		t.Fatalf("reload control records:\n%s", strings.Join(reloads, "\n"))
	}
	verifyAudit(t, auditLog)
}
