package beatloop

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/varta-go/varta/pkg/agent"
	"github.com/varta-go/varta/pkg/agent/agenttest"
	"github.com/varta-go/varta/pkg/vlp"
)

// TestSendTerminalWaitsForRoom: with the observer's queue full, the
// terminal frame goes out as soon as the observer reads one datagram, and
// gives up after the patience when it never does.
func TestSendTerminalWaitsForRoom(t *testing.T) {
	tests := []struct {
		name     string
		reading  bool
		wantSent bool
	}{
		{"observer reads", true, true},
		{"observer stuck", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, err := os.MkdirTemp("", "vbl")
			if err != nil {
				t.Fatal(err)
			}
			defer os.RemoveAll(dir)
			p := filepath.Join(dir, "s")
			r, err := agenttest.ListenUnix(p)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			a, err := agent.DialUnix(p)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			for i := 0; a.Beat(vlp.StatusOk, 0).Outcome != agent.Dropped; i++ {
				if i > 10000 {
					t.Fatal("queue never filled")
				}
			}
			if tt.reading {
				time.AfterFunc(30*time.Millisecond, func() { r.Recv(time.Second) })
			}
			start := time.Now()
			res := SendTerminal(a, 150*time.Millisecond)
			if res.Sent() != tt.wantSent {
				t.Fatalf("result %v after %v", res, time.Since(start))
			}
			if !tt.wantSent && (res.Reason != agent.KernelQueueFull || time.Since(start) < 150*time.Millisecond) {
				t.Fatalf("gave up with %v after %v", res, time.Since(start))
			}
		})
	}
}
