package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
	"github.com/varta-go/varta/pkg/vlp"
	"github.com/varta-go/varta/pkg/vlp/secure"
)

// beatAgent runs `varta-beat run` against socket every interval and
// returns it with its pid; it is killed at the end of the test.
func beatAgent(t *testing.T, socket string, interval time.Duration) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(beatPath, "run", "--socket", socket, "--interval", interval.String())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// restartDaemon starts varta-watch again in d's directory with args (the
// same socket, events file and metrics token file; the events file is
// appended to).
func restartDaemon(t *testing.T, d *daemon, args ...string) *daemon {
	t.Helper()
	pargs := []string{"--prom-addr", "127.0.0.1:0", "--prom-token-file", d.tokenPath}
	nd := startIn(t, d.Dir, nil, append(pargs, args...)...)
	nd.usePromAddr(d.token, d.tokenPath)
	return nd
}

// waitSaves waits until the daemon wrote its state files at least n more
// times than now.
func (d *daemon) waitSaves(n float64) {
	d.t.Helper()
	base := d.metric("varta_state_saves_total")
	testsupport.Eventually(d.t, 10*time.Second, "state saves", func() bool { return d.metric("varta_state_saves_total") >= base+n })
}

// TestRestartKeepsStalledAgent: an agent stopped before a daemon restart
// is still reported stalled after it (events, metrics) and recovered once
// the gates allow; an agent that kept beating is not stalled. Shown for a
// clean stop (state saved at shutdown) and a crash (state from the last
// periodic save).
func TestRestartKeepsStalledAgent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		sig  syscall.Signal
	}{
		{"SIGTERM", syscall.SIGTERM},
		{"SIGKILL", syscall.SIGKILL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := newDir(t)
			stateDir := filepath.Join(dir, "state")
			common := []string{"--threshold-ms", "600", "--state-dir", stateDir, "--state-save-interval-ms", "200"}
			args, token, tf := promArgs(t, dir)
			d := startIn(t, dir, nil, append(args, common...)...)
			d.usePromAddr(token, tf)

			hung := beatAgent(t, d.Socket, 100*time.Millisecond)
			alive := beatAgent(t, d.Socket, 100*time.Millisecond)
			hp, ap := strconv.Itoa(hung.Process.Pid), strconv.Itoa(alive.Process.Pid)
			d.WaitEvents(10*time.Second, "beats of both agents", func(e []event) bool {
				return len(testsupport.Filter(e, "beat", hp)) > 0 && len(testsupport.Filter(e, "beat", ap)) > 0
			})
			hung.Process.Signal(syscall.SIGSTOP)
			d.WaitEvents(10*time.Second, "the stopped agent's stall", func(e []event) bool { return len(testsupport.Filter(e, "stall", hp)) == 1 })
			d.waitMetric(`varta_agents{state="stalled"}`, 1)
			d.waitSaves(2) // the periodic save has seen the stall
			code := d.Stop(tc.sig)
			if tc.sig == syscall.SIGTERM && code != 0 {
				t.Fatalf("exit %d", code)
			}
			if tc.sig == syscall.SIGKILL {
				os.Remove(d.Socket) // a killed daemon leaves it behind
			}
			linesBefore := len(d.ReadEvents())

			// The new daemon may recover: SIGCONT the agent.
			kill, _ := exec.LookPath("kill")
			nd := restartDaemon(t, d, append(common, "--recovery-exec", kill+" -CONT {pid}", "--recovery-debounce-ms", "60000")...)
			m := nd.scrape()
			if m[`varta_agents{state="stalled"}`] != 1 || m["varta_state_agents_restored_total"] != 2 {
				t.Fatalf("right after the restart: stalled %v, restored %v; want 1 and 2",
					m[`varta_agents{state="stalled"}`], m["varta_state_agents_restored_total"])
			}
			after := func(e []event) []event {
				if len(e) < linesBefore {
					return nil
				}
				return e[linesBefore:]
			}
			nd.WaitEvents(5*time.Second, "the stall reported again", func(e []event) bool {
				return len(testsupport.Filter(after(e), "stall", hp)) == 1
			})
			// Recovery runs after one threshold of grace and resumes the
			// agent, which beats again.
			nd.waitMetric(`varta_recovery_outcomes_total{outcome="spawned"}`, 1)
			evs := nd.WaitEvents(10*time.Second, "the recovered agent's beats", func(e []event) bool {
				return len(testsupport.Filter(after(e), "beat", hp)) > 0
			})
			nd.waitMetric(`varta_agents{state="stalled"}`, 0)
			if s := testsupport.Filter(after(evs), "stall", ap); len(s) != 0 {
				t.Fatalf("the agent that kept beating was reported stalled after the restart: %+v", s)
			}
			if s := testsupport.Filter(after(evs), "stall", hp); len(s) != 1 {
				t.Fatalf("%d stall lines for the stopped agent after the restart, want 1", len(s))
			}
			if n := nd.metric("varta_state_load_failures_total"); n != 0 {
				t.Fatalf("load failures %v", n)
			}
		})
	}
}

// TestRestartWithoutStateForgets is the control: without --state-dir the
// restarted daemon does not know the stopped agent.
func TestRestartWithoutStateForgets(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	args, token, tf := promArgs(t, dir)
	d := startIn(t, dir, nil, append(args, "--threshold-ms", "300")...)
	d.usePromAddr(token, tf)
	hung := beatAgent(t, d.Socket, 100*time.Millisecond)
	hp := strconv.Itoa(hung.Process.Pid)
	d.WaitEvents(10*time.Second, "a beat", func(e []event) bool { return len(testsupport.Filter(e, "beat", hp)) > 0 })
	hung.Process.Signal(syscall.SIGSTOP)
	d.waitMetric(`varta_agents{state="stalled"}`, 1)
	d.Stop(syscall.SIGTERM)
	nd := restartDaemon(t, d, "--threshold-ms", "300")
	time.Sleep(600 * time.Millisecond)
	if n := nd.metric(`varta_agents{state="stalled"}`); n != 0 {
		t.Fatalf("stalled %v without a state directory, want 0 (this is what --state-dir fixes)", n)
	}
}

// TestRestartRefusesReplayedSecureFrames: secure frames captured before a
// restart and replayed after it are refused and counted, with the state
// directory; without it they are accepted.
func TestRestartRefusesReplayedSecureFrames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		state     bool
		sig       syscall.Signal
		wantBeats int // of the 5 replayed frames
	}{
		{"state, SIGTERM", true, syscall.SIGTERM, 0},
		{"state, SIGKILL after a save", true, syscall.SIGKILL, 0},
		{"no state", false, syscall.SIGTERM, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := newDir(t)
			keyPath := writeKey(t, dir, "key", vectorKeyHex)
			key, err := secure.ParseKeyFile(keyPath)
			if err != nil {
				t.Fatal(err)
			}
			common := []string{"--threshold-ms", "60000", "--key-file", keyPath}
			if tc.state {
				common = append(common, "--state-dir", filepath.Join(dir, "state"), "--state-save-interval-ms", "200")
			}
			d, addr := startUDP(t, dir, common...)

			// Capture five frames of an agent, delivered once.
			const pid = 4242
			s, err := secure.NewSharedSealer(key)
			if err != nil {
				t.Fatal(err)
			}
			var captured [][]byte
			for n := uint64(1); n <= 5; n++ {
				f := vlp.Frame{Status: vlp.StatusOk, Pid: pid, Timestamp: n, Nonce: n}
				plain := f.Marshal()
				buf := make([]byte, s.Size())
				s.Seal(buf, &plain)
				s.Commit()
				captured = append(captured, buf)
				udpSend(t, addr, buf)
			}
			d.WaitEvents(10*time.Second, "5 beats", func(e []event) bool { return len(testsupport.Filter(e, "beat", "4242")) == 5 })
			if tc.state {
				d.waitSaves(2)
			}
			d.Stop(tc.sig)
			os.Remove(d.Socket)
			before := len(testsupport.Filter(d.ReadEvents(), "beat", "4242"))

			port := addr[strings.LastIndexByte(addr, ':')+1:]
			nd := restartDaemon(t, d, append(common, "--udp-port", port)...)
			c, err := net.Dial("udp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for _, b := range captured {
				c.Write(b)
			}
			testsupport.Eventually(t, 10*time.Second, "the replayed frames to be decided", func() bool {
				accepted := len(testsupport.Filter(nd.ReadEvents(), "beat", "4242")) - before
				return nd.metric("varta_secure_replay_refused_total")+float64(accepted) >= 5
			})
			got := len(testsupport.Filter(nd.ReadEvents(), "beat", "4242")) - before
			if got != tc.wantBeats {
				t.Fatalf("%d replayed frames accepted as beats, want %d", got, tc.wantBeats)
			}
			if tc.state {
				m := nd.scrape()
				if m["varta_secure_replay_refused_total"] != 5 || m["varta_state_replay_senders_restored_total"] != 1 {
					t.Fatalf("refused %v, restored %v; want 5 and 1", m["varta_secure_replay_refused_total"], m["varta_state_replay_senders_restored_total"])
				}
				// The agent itself carries on: its next frame is accepted.
				f := vlp.Frame{Status: vlp.StatusOk, Pid: pid, Timestamp: 6, Nonce: 6}
				plain := f.Marshal()
				buf := make([]byte, s.Size())
				s.Seal(buf, &plain)
				c.Write(buf)
				nd.WaitEvents(10*time.Second, "the next genuine frame", func(e []event) bool {
					return len(testsupport.Filter(e, "beat", "4242"))-before == 1
				})
			}
		})
	}
}

// TestHostileStateFiles: a state file the daemon must not trust is
// refused with a message naming the file and the rule; the daemon starts
// fresh, counts it, and replaces the file at its next save.
func TestHostileStateFiles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		plant func(t *testing.T, path string)
		want  string
	}{
		{"garbage", func(t *testing.T, p string) { os.WriteFile(p, []byte("agent 1 3 1 1 1 1 - 1 0 0 0 -\n"), 0o600) }, "no end line"},
		{"torn", func(t *testing.T, p string) {
			os.WriteFile(p, []byte("varta-watch-state agents v1\nsaved 1\nboot -\nagent 1 0 - - 1 1 - 1 0 0 0 -\n"), 0o600)
		}, "last line must be"},
		{"group-writable", func(t *testing.T, p string) {
			os.WriteFile(p, []byte("x\n"), 0o600)
			os.Chmod(p, 0o620)
		}, "grants group/other access"},
		{"symlink", func(t *testing.T, p string) {
			other := filepath.Join(filepath.Dir(p), "elsewhere")
			os.WriteFile(other, []byte("x\n"), 0o600)
			os.Symlink(other, p)
		}, "is a symlink"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := newDir(t)
			stateDir := filepath.Join(dir, "state")
			os.Mkdir(stateDir, 0o700)
			file := filepath.Join(stateDir, "agents.state")
			tc.plant(t, file)
			args, token, tf := promArgs(t, dir)
			d := startIn(t, dir, nil, append(args, "--threshold-ms", "1000", "--state-dir", stateDir, "--state-save-interval-ms", "100")...)
			d.usePromAddr(token, tf)
			if n := d.metric("varta_state_load_failures_total"); n != 1 {
				t.Fatalf("load failures %v, want 1", n)
			}
			log := d.Stderr.String()
			if !strings.Contains(log, file) || !strings.Contains(log, tc.want) {
				t.Fatalf("log does not name %s and %q:\n%s", file, tc.want, log)
			}
			d.waitSaves(1)
			if st, err := os.Lstat(file); err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 {
				t.Fatalf("state file after the save: %v %v", st.Mode(), err)
			}
			if code := d.Stop(syscall.SIGTERM); code != 0 {
				t.Fatalf("exit %d", code)
			}
		})
	}
}

// TestStateDirRefused: a state directory anyone can write to is a runtime
// error naming it; the daemon does not start.
func TestStateDirRefused(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	stateDir := filepath.Join(dir, "state")
	os.Mkdir(stateDir, 0o700)
	os.Chmod(stateDir, 0o777)
	cmd := exec.Command(binPath, "--socket", filepath.Join(dir, "s.sock"), "--threshold-ms", "1000", "--state-dir", stateDir)
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), stateDir) || !strings.Contains(string(out), "group/other-writable") {
		t.Fatalf("exit %d (%v), output %s", cmd.ProcessState.ExitCode(), err, out)
	}
}
