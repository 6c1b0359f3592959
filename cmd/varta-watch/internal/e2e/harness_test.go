package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/pkg/vlp"
)

// binPath is the varta-watch binary built once for the whole package;
// agentPath is a world-executable copy of the test binary, so that agents
// can run under other uids.
var binPath, agentPath, auditPath, beatPath string

// agentEnv switches the test binary into a tiny agent (see runAgent).
const agentEnv = "VARTA_E2E_AGENT"

func TestMain(m *testing.M) {
	if spec := os.Getenv(agentEnv); spec != "" {
		os.Exit(runAgent(spec))
	}
	if spec := os.Getenv(minRecvEnv); spec != "" {
		os.Exit(runMinimalReceiver(spec))
	}
	if len(os.Args) > 1 && os.Args[1] == recordArg {
		os.Exit(runRecord(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == restartArg {
		os.Exit(runRestart(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == hangArg {
		os.Exit(runHang(os.Args[2:]))
	}
	dir, err := os.MkdirTemp("", "varta-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Chmod(dir, 0o755)
	binPath = filepath.Join(dir, "varta-watch")
	auditPath = filepath.Join(dir, "varta-audit")
	beatPath = filepath.Join(dir, "varta-beat")
	for _, b := range [][]string{
		{"build", "-race", "-o", binPath, "github.com/varta-go/varta/cmd/varta-watch"},
		{"build", "-o", auditPath, "github.com/varta-go/varta/cmd/varta-audit"},
		{"build", "-o", beatPath, "github.com/varta-go/varta/cmd/varta-beat"},
	} {
		build := exec.Command("go", b...)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "go", strings.Join(b, " "), err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	agentPath = filepath.Join(dir, "agent.test")
	if err := copyFile(os.Args[0], agentPath); err != nil {
		fmt.Fprintln(os.Stderr, "copy test binary:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runAgent is the agent mode of the test binary. spec is
// "SOCKET|PID|NONCES|HOLD": it sends one Ok beat for each comma-separated
// nonce with pid PID ("self" = its own pid), then sleeps HOLD (a Go
// duration) before exiting, printing its pid first.
func runAgent(spec string) int {
	parts := strings.Split(spec, "|")
	if len(parts) != 4 {
		fmt.Fprintln(os.Stderr, "bad agent spec", spec)
		return 2
	}
	pid := uint32(os.Getpid())
	if parts[1] == "outer" {
		// In a child pid namespace, /proc (the host's mount) still names
		// us by our pid in the observer's namespace.
		l, err := os.Readlink("/proc/self")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		v, _ := strconv.ParseUint(l, 10, 32)
		pid = uint32(v)
	} else if parts[1] != "self" {
		v, _ := strconv.ParseUint(parts[1], 10, 32)
		pid = uint32(v)
	}
	fmt.Println(pid)
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: parts[0], Net: "unixgram"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if rest, ok := strings.CutPrefix(parts[2], "blast:"); ok {
		// Send rest frames with nonces 1..rest as fast as the socket takes
		// them (a blocking socket: the receiver paces us).
		n, _ := strconv.Atoi(rest)
		var w [vlp.FrameSize]byte
		for i := 1; i <= n; i++ {
			f := vlp.Frame{Status: vlp.StatusOk, Pid: pid, Nonce: uint64(i)}
			f.Encode(&w)
			if _, err := c.Write(w[:]); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		return 0
	}
	for _, n := range strings.Split(parts[2], ",") {
		if n == "" {
			continue
		}
		if strings.HasPrefix(n, "+") {
			d, _ := time.ParseDuration(n[1:])
			time.Sleep(d)
			continue
		}
		nonce, _ := strconv.ParseUint(n, 10, 64)
		f := vlp.Frame{Status: vlp.StatusOk, Pid: pid, Nonce: nonce}
		b := f.Marshal()
		if _, err := c.Write(b[:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	hold, _ := time.ParseDuration(parts[3])
	time.Sleep(hold)
	return 0
}

// daemon is a running varta-watch.
type daemon struct {
	t       testing.TB
	cmd     *exec.Cmd
	dir     string
	socket  string
	events  string
	stdout  *lockedBuf
	stderr  *lockedBuf
	done    chan struct{}
	exitErr error

	promAddr, token, tokenPath string
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newDir returns a private directory for sockets and files.
func newDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "varta-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(d, 0o755)
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// start runs varta-watch with a socket and an events file in a fresh
// directory plus extra args, and waits until the socket exists.
func start(t *testing.T, extra ...string) *daemon {
	t.Helper()
	dir := newDir(t)
	return startIn(t, dir, nil, extra...)
}

func startIn(t *testing.T, dir string, env []string, extra ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, dir: dir, socket: filepath.Join(dir, "varta.sock"), events: filepath.Join(dir, "events.tsv"),
		stdout: &lockedBuf{}, stderr: &lockedBuf{}, done: make(chan struct{})}
	args := append([]string{"--socket", d.socket, "--export-file", d.events}, extra...)
	d.cmd = exec.Command(binPath, args...)
	d.cmd.Stdout, d.cmd.Stderr = d.stdout, d.stderr
	d.cmd.Env = append(os.Environ(), env...)
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.exitErr = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		d.cmd.Process.Signal(syscall.SIGKILL)
		<-d.done
		// The daemon is built with the race detector: a report on its
		// stderr fails the test that drove it.
		if strings.Contains(d.stderr.String(), "WARNING: DATA RACE") {
			t.Errorf("data race in varta-watch")
		}
		if t.Failed() {
			t.Logf("varta-watch stderr:\n%s", d.stderr.String())
		}
	})
	waitFor(t, 20*time.Second, "socket "+d.socket, func() bool {
		select {
		case <-d.done:
			t.Fatalf("varta-watch exited early: %v\n%s", d.exitErr, d.stderr.String())
		default:
		}
		_, err := os.Stat(d.socket)
		return err == nil
	})
	return d
}

// stop sends sig and returns the exit code.
func (d *daemon) stop(sig syscall.Signal) int {
	d.t.Helper()
	d.cmd.Process.Signal(sig)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		d.t.Fatal("varta-watch did not exit")
	}
	return d.cmd.ProcessState.ExitCode()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// event is one parsed events-file line.
type event struct {
	ns                                uint64
	kind, pid, nonce, status, payload string
}

func (d *daemon) readEvents() []event {
	f, err := os.Open(d.events)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) != 6 {
			d.t.Fatalf("events line with %d columns: %q", len(cols), sc.Text())
		}
		ns, err := strconv.ParseUint(cols[0], 10, 64)
		if err != nil {
			d.t.Fatalf("bad observer_ns in %q", sc.Text())
		}
		out = append(out, event{ns, cols[1], cols[2], cols[3], cols[4], cols[5]})
	}
	return out
}

// waitEvents waits until match returns true for the events so far.
func (d *daemon) waitEvents(within time.Duration, what string, match func([]event) bool) []event {
	d.t.Helper()
	var evs []event
	waitFor(d.t, within, what, func() bool {
		evs = d.readEvents()
		return match(evs)
	})
	return evs
}

func filter(evs []event, kind, pid string) []event {
	var out []event
	for _, e := range evs {
		if e.kind == kind && (pid == "" || e.pid == pid) {
			out = append(out, e)
		}
	}
	return out
}

// sender is a Unix datagram client of the daemon, in the test process.
type sender struct {
	t testing.TB
	c *net.UnixConn
}

func (d *daemon) dial() *sender {
	d.t.Helper()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: d.socket, Net: "unixgram"})
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { c.Close() })
	return &sender{t: d.t, c: c}
}

func (s *sender) raw(b []byte) {
	s.t.Helper()
	if _, err := s.c.Write(b); err != nil {
		s.t.Fatal(err)
	}
}

func (s *sender) frame(f vlp.Frame) {
	b := f.Marshal()
	s.raw(b[:])
}

func (s *sender) beat(nonce uint64) {
	s.frame(vlp.Frame{Status: vlp.StatusOk, Pid: uint32(os.Getpid()), Nonce: nonce})
}

// agent starts the test binary as an agent process; see runAgent.
func (d *daemon) agent(ctx context.Context, pid string, nonces string, hold time.Duration, attr *syscall.SysProcAttr) (*exec.Cmd, int) {
	d.t.Helper()
	cmd := exec.CommandContext(ctx, agentPath)
	cmd.Env = append(os.Environ(), agentEnv+"="+strings.Join([]string{d.socket, pid, nonces, hold.String()}, "|"))
	cmd.SysProcAttr = attr
	out, err := cmd.StdoutPipe()
	if err != nil {
		d.t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Wait()
		d.t.Fatalf("agent: %v: %s", err, stderr.String())
	}
	p, _ := strconv.Atoi(strings.TrimSpace(line))
	d.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, p
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withPid rewrites the pid of a valid 32-byte frame and fixes its CRC.
func withPid(b []byte, pid uint32) []byte {
	out := append([]byte(nil), b...)
	binary.LittleEndian.PutUint32(out[4:8], pid)
	binary.LittleEndian.PutUint32(out[28:32], vlp.Checksum(out[:28]))
	return out
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o755)
}

func itoa(i int) string { return strconv.Itoa(i) }

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
