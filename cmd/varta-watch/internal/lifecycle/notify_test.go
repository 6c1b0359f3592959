package lifecycle

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestNotifierSendsStates(t *testing.T) {
	type sockCase struct {
		name  string
		addr  func(t *testing.T) (listen, env string)
		linux bool
	}
	socks := []sockCase{
		{"path", func(t *testing.T) (string, string) { p := tempSocketPath(t); return p, p }, false},
		{"abstract", func(t *testing.T) (string, string) {
			n := fmt.Sprintf("@varta-test-notify-%d-%d", os.Getpid(), time.Now().UnixNano())
			return n, n
		}, true},
	}
	states := []struct {
		name string
		send func(n *Notifier) error
		want string
	}{
		{"ready", (*Notifier).Ready, "READY=1"},
		{"stopping", (*Notifier).Stopping, "STOPPING=1"},
		{"watchdog", (*Notifier).Watchdog, "WATCHDOG=1"},
		{"status", func(n *Notifier) error { return n.Status("tracking 12 agents") }, "STATUS=tracking 12 agents"},
		{"status one line", func(n *Notifier) error { return n.Status("a\nb\r\nc") }, "STATUS=a b c"},
		{"raw", func(n *Notifier) error { return n.Notify("READY=1\nSTATUS=up") }, "READY=1\nSTATUS=up"},
	}
	for _, sc := range socks {
		t.Run(sc.name, func(t *testing.T) {
			if sc.linux && runtime.GOOS != "linux" {
				t.Skip("abstract sockets are Linux only")
			}
			listen, env := sc.addr(t)
			conn := listenNotify(t, listen)
			n := NewNotifier(env)
			if !n.Enabled() {
				t.Fatal("Enabled() = false for a configured socket")
			}
			for _, st := range states {
				t.Run(st.name, func(t *testing.T) {
					if err := st.send(n); err != nil {
						t.Fatalf("send: %v", err)
					}
					got, ok := recv(t, conn, 5*time.Second)
					if !ok || got != st.want {
						t.Fatalf("received %q (ok=%v), want %q", got, ok, st.want)
					}
				})
			}
		})
	}
}

func TestNotifierErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		socket  string
		wantErr error
		wantIn  string
	}{
		{"relative path", "run/notify", ErrBadNotifySocket, "run/notify"},
		{"bare at", "@", ErrBadNotifySocket, "@"},
		{"no listener", filepath.Join(dir, "gone.sock"), nil, "gone.sock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := NewNotifier(tt.socket).Ready()
			if err == nil {
				t.Fatal("Ready succeeded")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantIn) {
				t.Fatalf("error %q does not name %q", err, tt.wantIn)
			}
		})
	}
}

func TestNotifierDisabled(t *testing.T) {
	for _, n := range []*Notifier{NewNotifier(""), nil} {
		if n.Enabled() {
			t.Fatal("Enabled() = true without a socket")
		}
		for _, f := range []func() error{n.Ready, n.Stopping, n.Watchdog, func() error { return n.Status("x") }} {
			if err := f(); err != nil {
				t.Fatalf("disabled notifier returned %v", err)
			}
		}
	}
}

// TestNotifierDoesNotHangOnFullSocket: a receiver that never reads must not
// block Notify (and so the pinger's Stop or shutdown) for long.
func TestNotifierDoesNotHangOnFullSocket(t *testing.T) {
	path := tempSocketPath(t)
	listenNotify(t, path) // never read
	n := NewNotifier(path)
	start := time.Now()
	var err error
	for i := 0; i < 100000 && err == nil; i++ {
		err = n.Watchdog()
	}
	if err == nil {
		t.Fatal("100000 unread datagrams all sent: the receive queue never filled")
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("error %v, want a send timeout", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("took %v to give up", d)
	}
}
