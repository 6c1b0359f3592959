package app

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/control"
	"github.com/varta-go/varta/cmd/varta-watch/internal/snooze"
	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
	"github.com/varta-go/varta/pkg/agent"
	"github.com/varta-go/varta/pkg/audit"
	"github.com/varta-go/varta/pkg/exitcode"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/golden")

// runCLI runs varta-watch in-process and returns stdout, stderr and the
// exit code.
func runCLI(t *testing.T, env map[string]string, args ...string) (string, string, int) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	a := New()
	var out, errOut bytes.Buffer
	a.Writer = &out
	code := RunWith(a, append([]string{Name}, args...), &errOut)
	return out.String(), errOut.String(), code
}

// fakeDaemon serves the control API over a real socket beside a (never
// bound) beat socket path, with a fixed fleet.
type fakeDaemon struct {
	dir, socket string
	srv         *control.Server
	audit       []audit.ControlRecord
}

func startFake(t *testing.T, agents []control.Agent) *fakeDaemon {
	t.Helper()
	dir := t.TempDir()
	store, _, err := snooze.Open(filepath.Join(dir, snooze.FileName), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDaemon{dir: dir, socket: filepath.Join(dir, "varta.sock")}
	d.srv, err = control.Listen(control.Options{
		Path:    filepath.Join(dir, ControlSocketName),
		Snoozes: store,
		Agents:  func() []control.Agent { return append([]control.Agent(nil), agents...) },
		Audit:   func(r audit.ControlRecord) { d.audit = append(d.audit, r) },
		Reload:  func(context.Context) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.srv.Close() })
	return d
}

var goldenFleet = []control.Agent{
	{Pid: 4242, Service: "importer", Unit: "-", State: control.StateStalled, LastBeatAgeMs: 65_400, Beats: 120, Stalls: 2, Recoveries: 1, Origin: "kernel"},
	{Pid: 101, Service: "web", Unit: "-", State: control.StateOK, LastBeatAgeMs: 210, Beats: 9000, Origin: "kernel"},
	{Pid: 102, Service: "web", Unit: "-", State: control.StateStalled, LastBeatAgeMs: 3100, Beats: 8000, Stalls: 1, Origin: "kernel"},
	{Pid: 77, Service: "pid:77", Unit: "-", State: control.StateCritical, LastBeatAgeMs: 900, Beats: 4, Origin: "udp"},
}

func TestAgentsCommand(t *testing.T) {
	d := startFake(t, goldenFleet)
	out, errOut, code := runCLI(t, nil, "agents", "--socket", d.socket)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	testsupport.CheckGolden(t, filepath.Join("testdata", "golden", "agents.txt"), []byte(out), *updateGolden, "-update-golden")

	// Filters, JSON, the environment and flags before the command.
	out, errOut, code = runCLI(t, map[string]string{"VARTA_WATCH_CONTROL_SOCKET": d.srv.Path()},
		"agents", "--state", "stalled", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r control.AgentsReply
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("JSON: %v\n%s", err, out)
	}
	if len(r.Agents) != 2 || r.Agents[0].Pid != 102 || r.Agents[1].Pid != 4242 {
		t.Fatalf("stalled agents %+v", r.Agents)
	}
	out, _, code = runCLI(t, nil, "--socket", d.socket, "agents", "--service", "web")
	if code != 0 || !strings.Contains(out, " 101 ") || strings.Contains(out, "4242") {
		t.Fatalf("--service web (%d):\n%s", code, out)
	}
}

func TestSnoozeCommands(t *testing.T) {
	d := startFake(t, goldenFleet)
	// Positional argument before the flags, as the documentation writes it.
	out, errOut, code := runCLI(t, nil, "snooze", "web", "--for", "30m", "--reason", "deploy 4711", "--socket", d.socket)
	if code != 0 || !strings.HasPrefix(out, "snoozed web until ") || !strings.HasSuffix(out, ": deploy 4711\n") {
		t.Fatalf("snooze (%d): %q %s", code, out, errOut)
	}
	out, _, code = runCLI(t, nil, "--socket", d.socket, "snooze", "--for", "forever", "--reason", "disk", "pid:77")
	if code != 0 || out != "snoozed pid:77 forever: disk\n" {
		t.Fatalf("snooze forever (%d): %q", code, out)
	}
	out, _, _ = runCLI(t, nil, "agents", "--socket", d.socket, "--state", "snoozed", "--format", "json")
	var r control.AgentsReply
	json.Unmarshal([]byte(out), &r)
	if len(r.Agents) != 1 || r.Agents[0].Pid != 102 {
		t.Fatalf("snoozed agents: %s", out)
	}
	out, _, code = runCLI(t, nil, "services", "--socket", d.socket)
	if code != 0 || !strings.Contains(out, "deploy 4711") || !strings.Contains(out, "1 ok, 1 snoozed") {
		t.Fatalf("services (%d):\n%s", code, out)
	}
	out, _, code = runCLI(t, nil, "resume", "web", "--reason", "done", "--socket", d.socket)
	if code != 0 || !strings.HasPrefix(out, "resumed (was snoozed) web until ") {
		t.Fatalf("resume (%d): %q", code, out)
	}
	_, errOut, code = runCLI(t, nil, "resume", "web", "--socket", d.socket)
	if code != exitcode.Failure || !strings.Contains(errOut, "web is not snoozed") {
		t.Fatalf("second resume (%d): %s", code, errOut)
	}
	out, _, code = runCLI(t, nil, "reload", "--socket", d.socket)
	if code != 0 || out != "reload: ok\n" {
		t.Fatalf("reload (%d): %q", code, out)
	}
	var actions []string
	for _, r := range d.audit {
		actions = append(actions, r.Action+" "+r.Target)
	}
	if got := strings.Join(actions, ", "); got != "snooze web, snooze pid:77, resume web, reload " {
		t.Fatalf("audited: %s", got)
	}
}

func TestClientErrors(t *testing.T) {
	d := startFake(t, nil)
	gone := filepath.Join(t.TempDir(), "varta.sock")
	tests := []struct {
		name string
		env  map[string]string
		args []string
		code int
		msg  string
	}{
		{"daemon not running", nil, []string{"agents", "--socket", gone}, exitcode.Failure, "is varta-watch running"},
		{"control socket off", nil, []string{"agents", "--control-socket", "off"}, exitcode.Usage, "disabled"},
		{"bad state", nil, []string{"agents", "--socket", d.socket, "--state", "asleep"}, exitcode.Usage, `"asleep"`},
		{"bad format", nil, []string{"services", "--socket", d.socket, "--format", "yaml"}, exitcode.Usage, `"yaml"`},
		{"extra argument", nil, []string{"agents", "--socket", d.socket, "web"}, exitcode.Usage, "unexpected argument"},
		{"snooze without target", nil, []string{"snooze", "--for", "1h", "--reason", "r", "--socket", d.socket}, exitcode.Usage, "TARGET"},
		{"snooze without --for", nil, []string{"snooze", "web", "--reason", "r", "--socket", d.socket}, exitcode.Usage, `"for"`},
		{"snooze without --reason", nil, []string{"snooze", "web", "--for", "1h", "--socket", d.socket}, exitcode.Usage, `"reason"`},
		{"snooze bad duration", nil, []string{"snooze", "web", "--for", "1 day", "--reason", "r", "--socket", d.socket}, exitcode.Usage, `"1 day"`},
		{"snooze bad target", nil, []string{"snooze", "-", "--for", "1h", "--reason", "r", "--socket", d.socket}, exitcode.Usage, "bad snooze target"},
		{"snooze forever spelled differently", nil, []string{"snooze", "web", "--for", "inf", "--reason", "r", "--socket", d.socket}, exitcode.Usage, `"inf"`},
		{"resume not snoozed", nil, []string{"resume", "db", "--socket", d.socket}, exitcode.Failure, "db is not snoozed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := runCLI(t, tc.env, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.msg) {
				t.Fatalf("exit %d, stderr %q; want %d containing %q", code, errOut, tc.code, tc.msg)
			}
		})
	}
	if len(d.audit) != 0 {
		t.Fatalf("failed commands were audited: %+v", d.audit)
	}
}

// TestDefaultControlSocket: without --control-socket or --socket (or
// their environment variables) the commands ask the daemon at
// control.sock beside the conventional beat socket, so that on a stock
// install "varta-watch agents" needs no flag; a daemon that is not there
// is a runtime error (exit 1) naming the path.
func TestDefaultControlSocket(t *testing.T) {
	if want := filepath.Join(filepath.Dir(agent.DefaultSocketPath), ControlSocketName); DefaultControlSocket != want {
		t.Fatalf("DefaultControlSocket = %q, want %q (beside the agents' default socket)", DefaultControlSocket, want)
	}
	d := startFake(t, goldenFleet)
	old := defaultControlSocket
	defer func() { defaultControlSocket = old }()
	noEnv := map[string]string{"VARTA_WATCH_SOCKET": "", "VARTA_WATCH_CONTROL_SOCKET": ""}

	defaultControlSocket = d.srv.Path()
	out, errOut, code := runCLI(t, noEnv, "agents")
	if code != 0 || !strings.Contains(out, "│ 4242 │") {
		t.Fatalf("agents without a flag: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	defaultControlSocket = filepath.Join(t.TempDir(), ControlSocketName)
	_, errOut, code = runCLI(t, noEnv, "services")
	if code != exitcode.Failure || !strings.Contains(errOut, defaultControlSocket) || !strings.Contains(errOut, "is varta-watch running") {
		t.Fatalf("services without a flag and no daemon: exit %d, stderr %q", code, errOut)
	}
}

func TestPermute(t *testing.T) {
	a := New()
	tests := []struct{ in, want string }{
		{"snooze web --for 30m --reason x", "snooze --for 30m --reason x web"},
		{"snooze --for=30m web --reason=x", "snooze --for=30m --reason=x web"},
		{"--socket /s snooze web --for 1h", "--socket /s snooze --for 1h web"},
		{"--log-format json snooze web --for 1h", "--log-format json snooze --for 1h web"},
		{"agents --watch --service web", "agents --watch --service web"},
		{"resume -- -odd", "resume -- -odd"},
		{"--socket /s --threshold-ms 10", "--socket /s --threshold-ms 10"},
		{"nosuch web --for 1h", "nosuch web --for 1h"},
	}
	for _, tc := range tests {
		got := permute(a, append([]string{Name}, strings.Fields(tc.in)...))[1:]
		if want := strings.Fields(tc.want); !reflect.DeepEqual(got, want) {
			t.Errorf("permute(%q) = %q, want %q", tc.in, got, want)
		}
	}
}

func TestControlOptions(t *testing.T) {
	base := []string{"--socket", "/run/varta/v.sock", "--threshold-ms", "1500"}
	o, err := parse(t, nil, base...)
	if err != nil || o.Control == nil || o.Control.Path != "/run/varta/control.sock" || o.Control.Mode != 0o600 || o.Control.StateDir != "" {
		t.Fatalf("defaults: %+v %v", o.Control, err)
	}
	o, err = parse(t, map[string]string{}, append(base, "--control-socket", "/run/c.sock", "--control-socket-mode", "0660",
		"--control-allow-uid", "1001", "--control-allow-uid", "1002", "--state-dir", "/var/lib/varta")...)
	if err != nil || o.Control.Path != "/run/c.sock" || o.Control.Mode != 0o660 || !reflect.DeepEqual(o.Control.AllowUIDs, []uint32{1001, 1002}) || o.Control.StateDir != "/var/lib/varta" {
		t.Fatalf("set: %+v %v", o.Control, err)
	}
	o, err = parse(t, nil, append(base, "--control-socket", "off")...)
	if err != nil || o.Control != nil {
		t.Fatalf("off: %+v %v", o.Control, err)
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--control-socket", "off", "--control-allow-uid", "7"}, "no effect"},
		{[]string{"--control-socket-mode", "rw"}, "--control-socket-mode"},
		{[]string{"--control-allow-uid", "bob"}, "--control-allow-uid"},
		{[]string{"--control-socket", "/run/varta/v.sock"}, "must differ"},
	} {
		if _, err := parse(t, nil, append(base, tc.args...)...); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.msg)
		}
	}
	_ = time.Second
}

// TestAgentsWatch: --watch redraws every second (clearing the screen on
// a terminal, printing a new time-stamped table elsewhere) and stops
// cleanly when its context ends.
func TestAgentsWatch(t *testing.T) {
	d := startFake(t, goldenFleet)
	for _, tty := range []bool{false, true} {
		t.Run(fmt.Sprintf("terminal=%v", tty), func(t *testing.T) {
			old := isTerminal
			isTerminal = func(io.Writer) bool { return tty }
			defer func() { isTerminal = old }()
			a := New()
			var out, errOut bytes.Buffer
			a.Writer, a.ErrWriter = &out, &errOut
			ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
			defer cancel()
			start := time.Now()
			if err := a.RunContext(ctx, []string{Name, "agents", "--watch", "--socket", d.socket}); err != nil {
				t.Fatalf("agents --watch: %v (%s)", err, errOut.String())
			}
			if el := time.Since(start); el > 10*time.Second {
				t.Fatalf("--watch ran %v after its context ended", el)
			}
			s := out.String()
			tables := strings.Count(s, "varta-watch agents (every 1s")
			if tables < 2 || tables > 4 || strings.Count(s, "│ 4242 │") != tables {
				t.Fatalf("%d redraws in 2.5 s:\n%s", tables, s)
			}
			if clears := strings.Count(s, "\x1b[H\x1b[2J"); tty && clears != tables || !tty && clears != 0 {
				t.Fatalf("%d screen clears for %d tables (terminal=%v)", clears, tables, tty)
			}
		})
	}
}
