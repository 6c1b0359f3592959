package agent_test

import (
	"errors"
	"testing"
	"time"

	"github.com/varta-go/varta/pkg/agent"
	"github.com/varta-go/varta/pkg/vlp"
)

// TestLazyConnectBeforeObserver: a lazy Agent starts without an observer,
// counts its beats as NoObserver drops, and connects on its own once the
// observer is up; its first delivered beat carries nonce 1.
func TestLazyConnectBeforeObserver(t *testing.T) {
	path := sockPath(t)
	a, err := agent.Connect(agent.Options{SocketPath: path, Lazy: true, LazyRetry: 20 * time.Millisecond})
	if err != nil {
		t.Fatalf("lazy connect without an observer: %v", err)
	}
	defer a.Close()
	if a.Connected() {
		t.Fatal("connected without an observer")
	}
	for i := 0; i < 3; i++ {
		if r := a.Beat(vlp.StatusOk, 0); r.Outcome != agent.Dropped || r.Reason != agent.NoObserver {
			t.Fatalf("beat %d without observer: %v", i, r)
		}
	}

	obs := listenUnix(t, path)
	deadline := time.Now().Add(5 * time.Second)
	var r agent.Result
	for r = a.Beat(vlp.StatusOk, 7); !r.Sent(); r = a.Beat(vlp.StatusOk, 7) {
		if time.Now().After(deadline) {
			t.Fatalf("never connected: %v, stats %+v", r, a.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !a.Connected() {
		t.Fatal("sent but not connected")
	}
	f, _, err := obs.RecvFrame(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if f.Nonce != 1 || f.Payload != 7 {
		t.Fatalf("first delivered frame %+v, want nonce 1 payload 7", f)
	}
	st := a.Stats()
	if st.Reconnects != 1 || st.Dropped[agent.NoObserver] < 3 || st.Sent != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestLazyRetryIsRateLimited: while the observer is absent, connection
// attempts happen at most once per LazyRetry, however often the Agent beats.
func TestLazyRetryIsRateLimited(t *testing.T) {
	a, err := agent.Connect(agent.Options{SocketPath: sockPath(t), Lazy: true, LazyRetry: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for i := 0; i < 1000; i++ {
		a.Beat(vlp.StatusOk, 0)
	}
	if st := a.Stats(); st.ReconnectFailures != 0 || st.Dropped[agent.NoObserver] != 1000 {
		t.Fatalf("stats %+v: want 1000 NoObserver drops and no attempt within the hour", st)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("close of a never-connected agent: %v", err)
	}
}

// TestNotLazyStillFails: without Lazy, a missing observer is an error.
func TestNotLazyStillFails(t *testing.T) {
	_, err := agent.Connect(agent.Options{SocketPath: sockPath(t)})
	if !errors.Is(err, agent.ErrNoObserver) {
		t.Fatalf("err = %v, want ErrNoObserver", err)
	}
	if _, err := agent.Connect(agent.Options{SocketPath: "/x", Lazy: true, LazyRetry: -1}); !errors.Is(err, agent.ErrInvalidOptions) {
		t.Fatalf("negative LazyRetry: %v", err)
	}
}

func TestDefaultSocket(t *testing.T) {
	tests := []struct{ env, want string }{
		{"", agent.DefaultSocketPath},
		{"/tmp/v.sock", "/tmp/v.sock"},
	}
	for _, tc := range tests {
		t.Setenv(agent.SocketEnv, tc.env)
		if got := agent.DefaultSocket(); got != tc.want {
			t.Errorf("VARTA_SOCKET=%q: DefaultSocket() = %q, want %q", tc.env, got, tc.want)
		}
	}
}
