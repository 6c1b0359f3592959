package metrics_test

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/varta-go/varta/cmd/varta-watch/internal/metrics"
)

// fakeSource is a tracker stand-in whose table the test replaces between
// scrapes.
type fakeSource struct {
	mu       sync.Mutex
	agents   []metrics.AgentView
	capacity int
}

func (f *fakeSource) set(agents ...metrics.AgentView) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.agents = agents
}

func (f *fakeSource) EachAgent(fn func(metrics.AgentView)) {
	f.mu.Lock()
	agents := f.agents
	f.mu.Unlock()
	for _, a := range agents {
		fn(a)
	}
}

func (f *fakeSource) Tracked() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.agents)
}

func (f *fakeSource) Capacity() int { return f.capacity }

// testToken is a valid metrics token.
const testToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789ABCDEF"

// writeFile writes content to name in a fresh temporary directory with the
// given mode and returns its path.
func writeFile(t testing.TB, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // WriteFile's mode is subject to umask
		t.Fatal(err)
	}
	return p
}

// writeToken writes a valid token file and returns its path.
func writeToken(t testing.TB) string {
	t.Helper()
	return writeFile(t, "prom.token", testToken+"\n", 0o600)
}
