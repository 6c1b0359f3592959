package lifecycle

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// listenNotify binds a unixgram socket standing in for the service
// manager's notify socket.
func listenNotify(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %q: %v", name, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func tempSocketPath(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "notify.sock")
}

// recv reads one datagram, waiting up to wait; ok is false on timeout.
func recv(t *testing.T, conn *net.UnixConn, wait time.Duration) (string, bool) {
	t.Helper()
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(wait))
	n, err := conn.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "", false
	}
	if err != nil {
		t.Fatalf("read notify socket: %v", err)
	}
	return string(buf[:n]), true
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// goroutinesIn counts goroutines whose stack mentions fn, waiting briefly
// for exiting ones to finish when want is given.
func goroutinesIn(fn string, want int) int {
	count := func() int {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		return bytes.Count(buf, []byte(fn))
	}
	n := count()
	for deadline := time.Now().Add(5 * time.Second); n != want && time.Now().Before(deadline); n = count() {
		time.Sleep(2 * time.Millisecond)
	}
	return n
}

// childEnv names the mode a re-executed test binary runs in.
const childEnv = "VARTA_LIFECYCLE_TEST_CHILD"

func inChild(mode string) bool { return os.Getenv(childEnv) == mode }

// runChild re-executes the test binary for one test in mode and returns its
// output and exit error (nil for status 0).
func runChild(t *testing.T, test, mode string) (stdout, stderr []byte, err error) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.Bytes(), e.Bytes(), err
}
