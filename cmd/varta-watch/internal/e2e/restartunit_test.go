package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
	"github.com/varta-go/varta/pkg/audit"
)

// restartUnit is the reference recovery program of deploy/recovery.
func restartUnit(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("../../../../deploy/recovery/restart-unit")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeSystem is a /proc with one cgroup file per pid and a systemctl that
// records its arguments, for running restart-unit without systemd.
type fakeSystem struct{ proc, systemctl, calls string }

func newFakeSystem(t *testing.T) fakeSystem {
	dir := newDir(t)
	f := fakeSystem{proc: filepath.Join(dir, "proc"), systemctl: filepath.Join(dir, "systemctl"), calls: filepath.Join(dir, "calls")}
	if err := os.Mkdir(f.proc, 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho \"$*\" >> " + f.calls + "\n"
	if err := os.WriteFile(f.systemctl, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f fakeSystem) setCgroup(t *testing.T, pid int, content string) {
	t.Helper()
	d := filepath.Join(f.proc, strconv.Itoa(pid))
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "cgroup"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (f fakeSystem) readCalls(t *testing.T) string {
	b, err := os.ReadFile(f.calls)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// TestRestartUnitMapsPidToUnit runs deploy/recovery/restart-unit against
// cgroup files of the shapes systemd writes: it restarts the service unit
// that holds the pid and refuses everything it cannot name safely.
func TestRestartUnitMapsPidToUnit(t *testing.T) {
	t.Parallel()
	script := restartUnit(t)
	tests := []struct {
		name, cgroup, pattern, arg string
		code                       int
		restart, stderr            string
	}{
		{name: "system service", cgroup: "0::/system.slice/web.service\n", code: 0, restart: "restart --no-block -- web.service"},
		{name: "sub-cgroup of a service", cgroup: "0::/system.slice/db.service/worker\n", code: 0, restart: "restart --no-block -- db.service"},
		{name: "nested slice", cgroup: "0::/system.slice/app.slice/app-api@3.service\n", code: 0, restart: "restart --no-block -- app-api@3.service"},
		{name: "hybrid hierarchy", cgroup: "12:pids:/system.slice/web.service\n0::/system.slice/web.service\n", code: 0, restart: "restart --no-block -- web.service"},
		{name: "matches the allowed pattern", cgroup: "0::/system.slice/app-api.service\n", pattern: "app-*.service", code: 0, restart: "restart --no-block -- app-api.service"},
		{name: "outside the allowed pattern", cgroup: "0::/system.slice/sshd.service\n", pattern: "app-*.service", code: 1, stderr: "does not match VARTA_RESTART_UNITS"},
		{name: "user manager", cgroup: "0::/user.slice/user-1000.slice/user@1000.service/app.slice/x.service\n", code: 1, stderr: "per-user manager"},
		{name: "session scope", cgroup: "0::/user.slice/user-1000.slice/session-4.scope\n", code: 1, stderr: "per-user manager"},
		{name: "system scope", cgroup: "0::/system.slice/docker-abc.scope\n", code: 1, stderr: "in no .service unit"},
		{name: "root cgroup", cgroup: "0::/\n", code: 1, stderr: "in no .service unit"},
		{name: "varta-watch itself", cgroup: "0::/system.slice/varta-watch.service\n", code: 1, stderr: "varta-watch's own unit"},
		{name: "cgroup v1 only", cgroup: "1:name=systemd:/system.slice/web.service\n", code: 1, stderr: "no cgroup v2 entry"},
		{name: "process gone", code: 1, stderr: "no cgroup v2 entry"},
		{name: "not a pid", arg: "12a", code: 2, stderr: "must be a decimal number"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSystem(t)
			pid := 1000 + i
			if tc.cgroup != "" {
				f.setCgroup(t, pid, tc.cgroup)
			}
			arg := strconv.Itoa(pid)
			if tc.arg != "" {
				arg = tc.arg
			}
			cmd := exec.Command(script, arg)
			cmd.Env = []string{"PATH=/usr/bin:/bin", "VARTA_PROC=" + f.proc, "SYSTEMCTL=" + f.systemctl}
			if tc.pattern != "" {
				cmd.Env = append(cmd.Env, "VARTA_RESTART_UNITS="+tc.pattern)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.code, stderr.String())
			}
			if got := strings.TrimSpace(f.readCalls(t)); got != tc.restart {
				t.Fatalf("systemctl called with %q, want %q", got, tc.restart)
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Fatalf("stderr %q lacks %q", stderr.String(), tc.stderr)
			}
		})
	}
}

// TestRestartUnitAsRecoveryProgram: varta-watch runs restart-unit for a
// stalled agent with the agent's pid, and the program restarts the unit the
// pid's cgroup names.
func TestRestartUnitAsRecoveryProgram(t *testing.T) {
	t.Parallel()
	f := newFakeSystem(t)
	dir := newDir(t)
	auditFile := filepath.Join(dir, "audit.log")
	d := startIn(t, dir, nil, "--threshold-ms", "400",
		"--recovery-exec", restartUnit(t)+" {pid}",
		"--recovery-env", "VARTA_PROC="+f.proc, "--recovery-env", "SYSTEMCTL="+f.systemctl,
		"--recovery-audit-file", auditFile)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, pid := d.agent(ctx, "self", "1", 30*time.Second, nil)
	f.setCgroup(t, pid, "0::/system.slice/toy.service\n")
	testsupport.Eventually(t, 10*time.Second, "systemctl restart", func() bool { return f.readCalls(t) != "" })
	if got := strings.TrimSpace(f.readCalls(t)); got != "restart --no-block -- toy.service" {
		t.Fatalf("systemctl called with %q", got)
	}
	recs := waitAudit(t, auditFile, "complete record", func(rs []audit.Record) bool { return len(ofKind(rs, audit.KindComplete)) == 1 })
	if c := ofKind(recs, audit.KindComplete)[0].Complete; c.AgentPid != uint32(pid) || c.ExitCode != 0 {
		t.Fatalf("complete record %+v", c)
	}
}
