package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"flag"
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

	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
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
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: skipped under -short: these tests build and run the real binaries (make test runs them)")
		os.Exit(0)
	}
	bins, err := testsupport.Build(true)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath, auditPath, beatPath = bins.Watch, bins.Audit, bins.Beat
	agentPath = filepath.Join(bins.Dir, "agent.test")
	if err := testsupport.CopyExecutable(os.Args[0], agentPath); err != nil {
		fmt.Fprintln(os.Stderr, "copy test binary:", err)
		bins.Remove()
		os.Exit(1)
	}
	code := m.Run()
	bins.Remove()
	os.Exit(code)
}

// runAgent is the agent mode of the test binary. spec is
// "SOCKET|PID|NONCES|HOLD": it sends one Ok beat for each comma-separated
// nonce with pid PID ("self" = its own pid), then sleeps HOLD (a Go
// duration) before exiting, printing its pid first. NONCES "blast:N"
// sends nonces 1..N as fast as the socket takes them; "every:D" sends
// nonces 1, 2, … every D until the agent is killed (the test stops it with
// SIGSTOP once the daemon has what it needs).
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
	if rest, ok := strings.CutPrefix(parts[2], "every:"); ok {
		every, err := time.ParseDuration(rest)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		for i := uint64(1); ; i++ {
			f := vlp.Frame{Status: vlp.StatusOk, Pid: pid, Nonce: i}
			b := f.Marshal()
			if _, err := c.Write(b[:]); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			time.Sleep(every)
		}
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

// daemon is a running varta-watch with, when started with a metrics
// endpoint, its address and bearer token.
type daemon struct {
	*testsupport.Daemon
	t testing.TB

	promAddr, token, tokenPath string
}

// event is one parsed events-file line.
type event = testsupport.Event

// newDir returns a private directory for sockets and files.
func newDir(t testing.TB) string {
	t.Helper()
	return testsupport.ShortDir(t)
}

// start runs varta-watch with a socket and an events file in a fresh
// directory plus extra args, and waits until the socket exists.
func start(t *testing.T, extra ...string) *daemon {
	t.Helper()
	return startIn(t, newDir(t), nil, extra...)
}

// startIn runs varta-watch with its socket and events file in dir, the
// extra environment env and extra args, and waits until the socket exists.
func startIn(t *testing.T, dir string, env []string, extra ...string) *daemon {
	t.Helper()
	return &daemon{Daemon: testsupport.Start(t, binPath, dir, env, extra...), t: t}
}

// sender is a Unix datagram client of the daemon, in the test process.
type sender struct {
	t testing.TB
	c *net.UnixConn
}

func (d *daemon) dial() *sender {
	d.t.Helper()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: d.Socket, Net: "unixgram"})
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

// agent starts the test binary as an agent process of the daemon; see
// runAgent.
func (d *daemon) agent(ctx context.Context, pid string, nonces string, hold time.Duration, attr *syscall.SysProcAttr) (*exec.Cmd, int) {
	d.t.Helper()
	return startAgent(ctx, d.t, d.Socket, pid, nonces, hold, attr)
}

// startAgent starts the test binary as an agent sending to socket (see
// runAgent) and returns it with the pid it printed; it is killed at the
// end of the test.
func startAgent(ctx context.Context, t testing.TB, socket, pid, nonces string, hold time.Duration, attr *syscall.SysProcAttr) (*exec.Cmd, int) {
	t.Helper()
	cmd := exec.CommandContext(ctx, agentPath)
	cmd.Env = append(os.Environ(), agentEnv+"="+strings.Join([]string{socket, pid, nonces, hold.String()}, "|"))
	cmd.SysProcAttr = attr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Wait()
		t.Fatalf("agent: %v: %s", err, stderr.String())
	}
	p, _ := strconv.Atoi(strings.TrimSpace(line))
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
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

func itoa(i int) string { return strconv.Itoa(i) }

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
