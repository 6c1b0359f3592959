package e2e

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/control"
	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
	"github.com/varta-go/varta/pkg/audit"
	"github.com/varta-go/varta/pkg/vlp"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/golden from the real binary's output")

// maskColumns replaces the cells of the named columns of a table printed by
// varta-watch agents with a right-aligned "~" of the same width (the width
// of those columns is their header's: every value is shorter), so that a
// table of a live daemon compares byte for byte with a golden file.
func maskColumns(t *testing.T, table string, names ...string) string {
	t.Helper()
	lines := strings.Split(table, "\n")
	var idx []int
	for _, l := range lines {
		cells := strings.Split(l, "│")
		for i, c := range cells {
			for _, n := range names {
				if strings.TrimSpace(c) == n {
					idx = append(idx, i)
				}
			}
		}
		if len(idx) > 0 {
			break
		}
	}
	if len(idx) != len(names) {
		t.Fatalf("columns %q not all in the header:\n%s", names, table)
	}
	header := true
	for li, l := range lines {
		cells := strings.Split(l, "│")
		if len(cells) < 3 {
			continue
		}
		if header { // the first row with cells is the header
			header = false
			continue
		}
		for _, i := range idx {
			w := len([]rune(cells[i]))
			cells[i] = " " + fmt.Sprintf("%*s", w-2, "~") + " "
		}
		lines[li] = strings.Join(cells, "│")
	}
	return strings.Join(lines, "\n")
}

// compareGolden compares got with testdata/golden/name (rewritten with
// -update-golden) and returns whether they are equal.
func compareGolden(t *testing.T, name, got string) bool {
	t.Helper()
	return got == string(testsupport.ReadGolden(t, filepath.Join("testdata", "golden", name), []byte(got), *updateGolden, "-update-golden"))
}

// TestAgentsTableGolden: the tables the real varta-watch agents and
// varta-watch services print for a real daemon with six agents — ok,
// degraded, critical, stalled, stalled under a snooze, and healthy under
// a snooze — match golden files byte for byte, with the two columns that
// a live fleet cannot fix (the last beat's age and the beat count) masked.
func TestAgentsTableGolden(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	port := testsupport.FreeUDPPort(t)
	d := startIn(t, dir, nil, "--threshold-ms", "1000", "--udp-port", port, "--i-accept-plaintext-udp",
		"--udp-bind-addr", "127.0.0.1", "--max-beat-rate", "0", "--global-beat-rate", "0")
	const first = 31001
	// The snoozes come first, so that 31005 stalls while snoozed.
	for _, p := range []string{"pid:31005", "pid:31006"} {
		if out, errOut, code := cli(t, nil, "snooze", p, "--for", "forever", "--reason", "disk swap "+p, "--socket", d.Socket); code != 0 {
			t.Fatalf("snooze %s: exit %d %q %s", p, code, out, errOut)
		}
	}
	silent := func(i int) bool { return i == 3 || i == 4 }
	status := func(i int) vlp.Status {
		return map[int]vlp.Status{1: vlp.StatusDegraded, 2: vlp.StatusCritical}[i]
	}
	stop := make(chan struct{})
	done := udpFleet(t, "127.0.0.1:"+port, first, 6, 100*time.Millisecond, silent, status, stop)
	defer func() { close(stop); <-done }()

	want := map[uint32]string{31001: "ok", 31002: "degraded", 31003: "critical", 31004: "stalled", 31005: "snoozed", 31006: "ok"}
	var agents, services string
	deadline := time.Now().Add(20 * time.Second)
	for {
		// States first (JSON), then the tables; a beat late on a loaded
		// machine can change a state in between, so a mismatch is retried
		// until the deadline.
		out, errOut, code := cli(t, nil, "agents", "--socket", d.Socket, "--format", "json")
		if code != 0 {
			t.Fatalf("agents --format json: exit %d: %s", code, errOut)
		}
		var r control.AgentsReply
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("agents --format json does not parse: %v\n%s", err, out)
		}
		got := map[uint32]string{}
		for _, a := range r.Agents {
			got[a.Pid] = a.State
		}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			a, errA, codeA := cli(t, nil, "agents", "--socket", d.Socket)
			s, errS, codeS := cli(t, nil, "services", "--socket", d.Socket)
			if codeA != 0 || codeS != 0 {
				t.Fatalf("agents: exit %d %s; services: exit %d %s", codeA, errA, codeS, errS)
			}
			agents, services = maskColumns(t, a, "last beat", "beats"), s
			okA, okS := compareGolden(t, "agents.txt", agents), compareGolden(t, "services.txt", services)
			if okA && okS {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no match with testdata/golden in 20 s (-update-golden to accept); last states %v\nagents:\n%s\nservices:\n%s",
				got, agents, services)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAgentsWatchOnTerminal: the real varta-watch agents --watch, run on a
// pseudo-terminal (script(1)), clears the screen and redraws the table
// every second, and exits 0 on SIGINT.
func TestAgentsWatchOnTerminal(t *testing.T) {
	t.Parallel()
	script, err := exec.LookPath("script")
	if err != nil {
		t.Fatalf("script(1) not found (%v): apt-get install bsdutils", err)
	}
	d := start(t, "--threshold-ms", "60000")
	ctx := t.Context()
	_, pid := d.agent(ctx, "self", "1", time.Minute, nil)
	testsupport.Eventually(t, 5*time.Second, "the agent in the listing", func() bool {
		out, _, _ := cli(t, nil, "agents", "--socket", d.Socket)
		return strings.Contains(out, "│ "+strconv.Itoa(pid)+" │")
	})
	// timeout sends one SIGINT after 3.5 s (--foreground: to varta-watch
	// only, not to its own process group as well, which would deliver a
	// second one) and, with --preserve-status, exits with varta-watch's
	// status, which script -e passes on.
	cmd := exec.Command(script, "-q", "-e", "-c",
		fmt.Sprintf("timeout --foreground --preserve-status -s INT 3.5 %s agents --watch --socket %s", strconv.Quote(binPath), strconv.Quote(d.Socket)),
		"/dev/null")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "TERM=xterm"}
	t0 := time.Now()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("agents --watch on a terminal: %v\n%q", err, out)
	}
	if el := time.Since(t0); el > 15*time.Second {
		t.Fatalf("agents --watch took %v to stop after SIGINT", el)
	}
	s := string(out)
	clears := strings.Count(s, "\x1b[H\x1b[2J")
	titles := strings.Count(s, "varta-watch agents (every 1s, Ctrl-C to stop)")
	rows := strings.Count(s, "│ "+strconv.Itoa(pid)+" │")
	if clears < 3 || clears > 5 || titles != clears || rows != clears {
		t.Fatalf("%d screen clears, %d titles, %d rows of agent %d in 3.5 s on a terminal:\n%q", clears, titles, rows, pid, s)
	}
}

// TestAuditStaysV2WithoutOperatorActions: a daemon with its control
// socket on (the default) that recovers a stall while operators only read
// (the commands and curl --unix-socket) or are refused (a resume of
// nothing, a malformed snooze) writes an audit log of the four schema v2
// kinds only, under the v2 header: control records appear only when an
// operator action took effect. Once the daemon is gone a command says so
// (exit 1, naming the socket).
func TestAuditStaysV2WithoutOperatorActions(t *testing.T) {
	t.Parallel()
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatalf("curl not found (%v): apt-get install curl", err)
	}
	dir := newDir(t)
	auditLog := filepath.Join(dir, "audit.log")
	d := startIn(t, dir, nil, "--threshold-ms", "300", "--recovery-exec", "/bin/true {pid}", "--recovery-debounce-ms", "0",
		"--recovery-audit-file", auditLog)
	_, pid := d.agent(t.Context(), "self", "1", time.Minute, nil)
	p := strconv.Itoa(pid)
	testsupport.Eventually(t, 10*time.Second, "the stall's recovery in the audit log", func() bool {
		return len(auditLines(t, auditLog, "spawn", "\t"+p+"\t")) == 1 && len(auditLines(t, auditLog, "complete", "\t"+p+"\t")) == 1
	})

	ctl := filepath.Join(dir, "control.sock")
	get := func(path string) (string, string) {
		out, err := exec.Command(curl, "-sS", "--unix-socket", ctl, "-w", "\n%{http_code}", "http://varta"+path).Output()
		if err != nil {
			t.Fatalf("curl %s: %v", path, err)
		}
		i := strings.LastIndex(string(out), "\n")
		if i < 0 {
			t.Fatalf("curl %s: no status in %q", path, out)
		}
		return string(out[:i]), string(out[i+1:])
	}
	body, code := get(control.PathAgents)
	var r control.AgentsReply
	if code != "200" || json.Unmarshal([]byte(body), &r) != nil || len(r.Agents) == 0 {
		t.Fatalf("curl --unix-socket %s %s: %s %s", ctl, control.PathAgents, code, body)
	}
	if body, code := get("/v1/snoozes"); code != "200" || !strings.Contains(body, `"snoozes"`) {
		t.Fatalf("curl /v1/snoozes: %s %s", code, body)
	}
	out, err := exec.Command(curl, "-sS", "--unix-socket", ctl, "-o", "/dev/null", "-w", "%{http_code}",
		"-d", `{"target":"web","for":"a while","reason":"x"}`, "http://varta/v1/snooze").Output()
	if err != nil || string(out) != "400" {
		t.Fatalf("curl POST a malformed snooze: %v %q, want 400", err, out)
	}
	for _, args := range [][]string{{"agents"}, {"services"}, {"resume", "web"}, {"snooze", "web", "--for", "soon", "--reason", "x"}} {
		_, errOut, code := cli(t, nil, append(args, "--socket", d.Socket)...)
		if want := map[string]int{"agents": 0, "services": 0, "resume": 1, "snooze": 2}[args[0]]; code != want {
			t.Fatalf("varta-watch %v: exit %d, want %d: %s", args, code, want, errOut)
		}
	}
	if c := d.Stop(syscall.SIGTERM); c != 0 {
		t.Fatalf("daemon exit %d", c)
	}
	// The daemon is gone (its control socket removed): exit 1, the path named.
	if _, errOut, code := cli(t, nil, "agents", "--socket", d.Socket); code != 1 || !strings.Contains(errOut, ctl) || !strings.Contains(errOut, "is varta-watch running") {
		t.Fatalf("agents after the daemon stopped: exit %d, stderr %q", code, errOut)
	}

	b, err := os.ReadFile(auditLog)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if lines[0] != audit.HeaderV2 {
		t.Fatalf("first line %q, want %q", lines[0], audit.HeaderV2)
	}
	kinds := map[string]int{}
	for i, l := range lines[1:] {
		rec, err := audit.ParseLine([]byte(l))
		if err != nil {
			t.Fatalf("line %d: %v: %q", i+2, err, l)
		}
		if rec.Kind == audit.KindControl {
			t.Fatalf("line %d is a control record although no operator action took effect: %q", i+2, l)
		}
		kinds[rec.Kind.String()]++
	}
	if kinds["spawn"] != 1 || kinds["complete"] != 1 {
		t.Fatalf("record kinds %v, want the recovery's spawn and complete", kinds)
	}
	verifyAudit(t, auditLog)
}
