package testsupport

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// PollInterval is how often Eventually checks its condition.
const PollInterval = 10 * time.Millisecond

// Eventually polls cond every PollInterval until it holds, and fails the
// test naming what it waited for if timeout passes first. Use it instead
// of a fixed sleep whenever a test waits for something to happen.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// Poll is Eventually for callers that report the failure themselves (with
// the last value seen, say): it polls cond every PollInterval and reports
// whether it held before timeout passed. cond is checked at least once.
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(PollInterval)
	}
	return true
}

// MaxSocketPath is the longest Unix socket path the kernel accepts
// (sun_path is 108 bytes on Linux, including the terminating NUL).
const MaxSocketPath = 107

// ShortDir returns a fresh directory for sockets and files, removed when
// the test ends. Unlike t.TempDir its path does not contain the test's
// name, so that socket paths in it stay within MaxSocketPath; it is
// world-traversable (0755) so that agents running under other uids reach
// the sockets in it.
func ShortDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "varta-t-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// SocketPath returns dir/name and fails the test if it is too long to be
// bound as a Unix socket.
func SocketPath(t testing.TB, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if len(p) > MaxSocketPath {
		t.Fatalf("socket path %q is %d bytes, longer than the kernel's %d: use ShortDir", p, len(p), MaxSocketPath)
	}
	return p
}

// Buffer is a bytes.Buffer safe for concurrent Write and String: the
// stdout or stderr of a child read while it still runs.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
