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

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
)

// notifyListener is a fake NOTIFY_SOCKET: every datagram the daemon sends
// is delivered on msgs together with its arrival time.
type notifyListener struct {
	path string
	msgs chan notifyMsg
}

type notifyMsg struct {
	at   time.Time
	text string
}

func listenNotify(t *testing.T, dir string) *notifyListener {
	t.Helper()
	n := &notifyListener{path: filepath.Join(dir, "notify.sock"), msgs: make(chan notifyMsg, 1024)}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { conn.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 512)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			select {
			case n.msgs <- notifyMsg{time.Now(), string(buf[:k])}:
			default:
			}
		}
	}()
	return n
}

// expect waits for a message containing want and returns it.
func (n *notifyListener) expect(t *testing.T, within time.Duration, want string) notifyMsg {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case m := <-n.msgs:
			if strings.Contains(m.text, want) {
				return m
			}
		case <-deadline:
			t.Fatalf("no %s on NOTIFY_SOCKET within %v", want, within)
		}
	}
}

// managerSocket creates the beat socket the way systemd does for
// varta-watch.socket (ListenDatagram=, PassCredentials=yes, SocketMode=0600)
// and keeps it open for the whole test, as the service manager would.
func managerSocket(t *testing.T, path string) *os.File {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "varta.sock")
	t.Cleanup(func() { f.Close() })
	return f
}

// startActivated starts varta-watch the way systemd starts a
// socket-activated service: sock is fd 3, LISTEN_FDS=1 and LISTEN_PID is
// the daemon's own pid (the shell sets it, then execs the daemon in its
// place). It waits for READY=1 on the fake notify socket.
func startActivated(t *testing.T, dir string, sock *os.File, n *notifyListener, extra ...string) *daemon {
	t.Helper()
	d := &daemon{Daemon: testsupport.NewDaemon(t, dir), t: t}
	args := append([]string{"-c", `LISTEN_PID=$$ exec "$0" "$@"`, binPath}, d.Args(extra...)...)
	cmd := exec.Command("/bin/sh", args...)
	cmd.Env = append(os.Environ(), "LISTEN_FDS=1", "LISTEN_FDNAMES=varta.sock", "NOTIFY_SOCKET="+n.path)
	cmd.ExtraFiles = []*os.File{sock}
	d.Run(cmd)
	n.expect(t, 30*time.Second, "READY=1")
	return d
}

// TestSocketActivationRestartLosesNoBeat: with the beat socket held by the
// service manager, a real agent (varta-beat run) keeps beating while the
// observer is stopped and started again. The beats sent while no observer
// ran wait in the kernel queue and are received by the next observer: the
// nonces in the events file are continuous across the restart, no stall is
// surfaced for the agent, and neither observer removes the socket file.
func TestSocketActivationRestartLosesNoBeat(t *testing.T) {
	// Not parallel: the beats queued during the restart must fit the kernel
	// queue, so the second start must be quick (seconds, on a host with the
	// default net.unix.max_dgram_qlen).
	dir := newDir(t)
	n := listenNotify(t, dir)
	path := filepath.Join(dir, "varta.sock")
	sock := managerSocket(t, path)

	// 500 ms between beats keeps the beats queued during the restart
	// (1.2 s of downtime plus the start of a race-detector build on a
	// loaded machine) below the kernel's default queue of 11 datagrams
	// (net.unix.max_dgram_qlen + 1) for up to 5 s.
	agent := exec.Command(beatPath, "run", "--socket", path, "--interval", "500ms")
	agentErr := &testsupport.Buffer{}
	agent.Stderr = agentErr
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	agentDone := make(chan struct{})
	go func() { agent.Wait(); close(agentDone) }()
	t.Cleanup(func() { agent.Process.Kill(); <-agentDone })
	pid := strconv.Itoa(agent.Process.Pid)

	d1 := startActivated(t, dir, sock, n, "--threshold-ms", "1000")
	d1.WaitEvents(15*time.Second, "beats before the restart", func(e []event) bool { return len(nonces(e, pid)) >= 3 })
	if code := d1.Stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("first observer exit %d:\n%s", code, d1.Stderr.String())
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket file removed by an observer that did not create it: %v", err)
	}
	before := nonces(d1.ReadEvents(), pid)
	last := before[len(before)-1]

	// Nobody reads the socket now; the agent keeps beating.
	time.Sleep(1200 * time.Millisecond)

	d2 := startActivated(t, dir, sock, n, "--threshold-ms", "1000")
	evs := d2.WaitEvents(15*time.Second, "beats after the restart", func(e []event) bool {
		return len(nonces(e, pid)) >= len(before)+5
	})
	all := nonces(evs, pid)
	if all[len(before)] != last+1 {
		t.Fatalf("first nonce after the restart %d, want %d (beats sent while no observer ran were lost)", all[len(before)], last+1)
	}
	keptBeating(t, evs, pid, all)
	stopKeepsSocket(t, d2, path)
	if s := agentErr.String(); s != "" {
		t.Fatalf("the agent reported problems: %s", s)
	}
}

// TestSystemdSocketActivate runs the daemon under the real
// systemd-socket-activate, which binds the datagram socket and starts
// varta-watch only once the first datagram is waiting. That tool does not
// enable credentials passing (a .socket unit does, with
// PassCredentials=yes): the beat queued before the observer turned
// SO_PASSCRED on carries no sender pid and is refused (counted in
// varta_io_errors_total),
// which is why the shipped unit sets PassCredentials=yes. Beats after that
// are tracked, and the observer leaves the socket file in place when it
// stops.
func TestSystemdSocketActivate(t *testing.T) {
	t.Parallel()
	tool := needTool(t, "systemd-socket-activate", "systemd")
	dir := newDir(t)
	n := listenNotify(t, dir)
	d := &daemon{Daemon: testsupport.NewDaemon(t, dir), t: t}
	d.Run(exec.Command(tool, append([]string{"--datagram", "--listen", d.Socket, "-E", "NOTIFY_SOCKET=" + n.path, binPath},
		d.Args("--threshold-ms", "60000")...)...))
	d.WaitSocket(20 * time.Second) // bound by systemd-socket-activate
	s := d.dial()
	s.beat(1)
	n.expect(t, 30*time.Second, "READY=1")
	s.beat(2)
	evs := d.WaitEvents(15*time.Second, "the second beat", func(e []event) bool { return len(testsupport.Filter(e, "beat", selfPid)) == 1 })
	if got := nonces(evs, selfPid); got[0] != 2 {
		t.Fatalf("nonces %v, want [2]", got)
	}
	if code := d.Stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d:\n%s", code, d.Stderr.String())
	}
	if _, err := os.Lstat(d.Socket); err != nil {
		t.Fatalf("socket file removed on shutdown: %v", err)
	}
	if !strings.Contains(d.Stderr.String(), "socket_activated=true") {
		t.Fatalf("daemon did not report socket activation:\n%s", d.Stderr.String())
	}
}

// TestSocketActivationWithStateKeepsTheFleet: socket activation and
// --state-dir together make an observer restart invisible to the fleet. An
// agent that keeps beating through the restart loses no beat (continuous
// nonces, no stall, the agent reports no drop); an agent that was stalled
// before the restart is still known and stalled the moment the new
// observer is ready, although it sends nothing any more. Without the state
// directory the new observer would not know it (TestRestartWithoutStateForgets).
func TestSocketActivationWithStateKeepsTheFleet(t *testing.T) {
	// Not parallel: as in TestSocketActivationRestartLosesNoBeat, the beats
	// queued during the restart must fit the kernel queue.
	dir := newDir(t)
	n := listenNotify(t, dir)
	path := filepath.Join(dir, "varta.sock")
	sock := managerSocket(t, path)
	pargs, token, tf := promArgs(t, dir)
	args := append(pargs, "--threshold-ms", "1000",
		"--state-dir", filepath.Join(dir, "state"), "--state-save-interval-ms", "200")

	alive := exec.Command(beatPath, "run", "--socket", path, "--interval", "500ms")
	aliveErr := &testsupport.Buffer{}
	alive.Stderr = aliveErr
	if err := alive.Start(); err != nil {
		t.Fatal(err)
	}
	aliveDone := make(chan struct{})
	go func() { alive.Wait(); close(aliveDone) }()
	t.Cleanup(func() { alive.Process.Kill(); <-aliveDone })
	hung := beatAgent(t, path, 100*time.Millisecond)
	ap, hp := strconv.Itoa(alive.Process.Pid), strconv.Itoa(hung.Process.Pid)

	d1 := startActivated(t, dir, sock, n, args...)
	d1.usePromAddr(token, tf)
	d1.WaitEvents(15*time.Second, "beats of both agents", func(e []event) bool {
		return len(nonces(e, ap)) >= 2 && len(nonces(e, hp)) >= 2
	})
	hung.Process.Signal(syscall.SIGSTOP)
	d1.WaitEvents(10*time.Second, "the stopped agent's stall", func(e []event) bool { return len(testsupport.Filter(e, "stall", hp)) == 1 })
	d1.waitSaves(2) // a periodic save has seen the stall
	if code := d1.Stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("first observer exit %d:\n%s", code, d1.Stderr.String())
	}
	before := nonces(d1.ReadEvents(), ap)

	time.Sleep(1200 * time.Millisecond) // no observer; the alive agent keeps beating

	d2 := startActivated(t, dir, sock, n, args...)
	d2.usePromAddr(token, tf)
	m := d2.scrape()
	if m[`varta_agents{state="stalled"}`] != 1 || m["varta_state_agents_restored_total"] != 2 || m["varta_state_load_failures_total"] != 0 {
		t.Fatalf("right after the restart: stalled %v, restored %v, load failures %v; want 1, 2, 0",
			m[`varta_agents{state="stalled"}`], m["varta_state_agents_restored_total"], m["varta_state_load_failures_total"])
	}
	evs := d2.WaitEvents(15*time.Second, "the alive agent's beats after the restart", func(e []event) bool {
		return len(nonces(e, ap)) >= len(before)+5
	})
	keptBeating(t, evs, ap, nonces(evs, ap))
	if v := d2.metric(`varta_agents{state="stalled"}`); v != 1 {
		t.Fatalf("stalled agents %v after the restart, want 1 (the stopped agent)", v)
	}
	stopKeepsSocket(t, d2, path)
	if s := aliveErr.String(); s != "" {
		t.Fatalf("the alive agent reported problems: %s", s)
	}
}

// TestSocketActivationRefusesWrongSocket: a descriptor passed by the
// service manager that is not the configured beat socket stops the daemon
// at start (exit 1) with a message naming the rule, and the daemon leaves
// the file of a socket it did not create alone.
func TestSocketActivationRefusesWrongSocket(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	stream := filepath.Join(dir, "stream.sock")
	other := filepath.Join(dir, "other.sock")
	for _, tc := range []struct {
		name, bound string
		typ         int
		want        string
	}{
		{"stream socket", stream, unix.SOCK_STREAM, "is not a SOCK_DGRAM socket"},
		{"other path", other, unix.SOCK_DGRAM, "is not bound to the configured --socket path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fd, err := unix.Socket(unix.AF_UNIX, tc.typ|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := unix.Bind(fd, &unix.SockaddrUnix{Name: tc.bound}); err != nil {
				t.Fatal(err)
			}
			f := os.NewFile(uintptr(fd), "passed.sock")
			defer f.Close()
			cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, binPath,
				"--socket", filepath.Join(dir, "varta.sock"), "--threshold-ms", "1000")
			cmd.Env = append(os.Environ(), "LISTEN_FDS=1")
			cmd.ExtraFiles = []*os.File{f}
			out, _ := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(string(out), tc.want) {
				t.Fatalf("exit %d, output:\n%s\nwant exit 1 naming %q", code, out, tc.want)
			}
			if _, err := os.Lstat(tc.bound); err != nil {
				t.Fatalf("the passed socket's file was removed: %v", err)
			}
		})
	}
}

// keptBeating fails t unless the agent pid's nonces (all, from evs) follow
// each other without a gap across an observer restart and no stall was
// surfaced for it.
func keptBeating(t *testing.T, evs []event, pid string, all []uint64) {
	t.Helper()
	for i := 1; i < len(all); i++ {
		if all[i] != all[i-1]+1 {
			t.Fatalf("agent %s: nonces not continuous at line %d: %d after %d (all: %v)", pid, i, all[i], all[i-1], all)
		}
	}
	if st := testsupport.Filter(evs, "stall", pid); len(st) != 0 {
		t.Fatalf("stall surfaced for agent %s, which kept beating: %+v", pid, st)
	}
}

// stopKeepsSocket stops a socket-activated observer with SIGTERM and
// fails t unless it exits 0 and leaves the socket file, which it did not
// create, in place.
func stopKeepsSocket(t *testing.T, d *daemon, path string) {
	t.Helper()
	if code := d.Stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("observer exit %d", code)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("socket file removed on shutdown: %v", err)
	}
}
