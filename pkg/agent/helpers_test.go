package agent_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/varta-go/varta/pkg/agent"
	"github.com/varta-go/varta/pkg/agent/agenttest"
	"github.com/varta-go/varta/pkg/vlp"
)

// sockPath returns a Unix socket path short enough for sun_path (t.TempDir
// can exceed 108 bytes with long test names).
func sockPath(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "vagt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "obs.sock")
}

func listenUnix(t testing.TB, path string) *agenttest.Receiver {
	t.Helper()
	r, err := agenttest.ListenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func listenUDP(t testing.TB) *agenttest.Receiver {
	t.Helper()
	r, err := agenttest.ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func connect(t testing.TB, o agent.Options) *agent.Agent {
	t.Helper()
	a, err := agent.Connect(o)
	if err != nil {
		t.Fatalf("connect %+v: %v", o, err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// recvFrame reads one plain frame, failing the test on timeout.
func recvFrame(t testing.TB, r *agenttest.Receiver) (vlp.Frame, agenttest.Datagram) {
	t.Helper()
	f, d, err := r.RecvFrame(2 * time.Second)
	if err != nil {
		t.Fatalf("receive frame: %v", err)
	}
	return f, d
}

// expectNothing asserts that nothing arrives within a short window.
func expectNothing(t testing.TB, r *agenttest.Receiver) {
	t.Helper()
	d, err := r.Recv(100 * time.Millisecond)
	if !errors.Is(err, agenttest.ErrTimeout) {
		t.Fatalf("expected no datagram, got %x (err %v)", d.Data, err)
	}
}
