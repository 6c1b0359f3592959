package listener

import (
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// TestCloseWakesRead: Close wakes a Read blocked on an idle socket, which
// then reports net.ErrClosed, for both kinds of listener, paced or not.
func TestCloseWakesRead(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) (read func(*Batch) (int, error), close func() error)
	}{
		{"unix", func(t *testing.T) (func(*Batch) (int, error), func() error) {
			u, err := ListenUnix(UnixOptions{Path: filepath.Join(t.TempDir(), "s.sock"), Mode: 0o600})
			if err != nil {
				t.Fatal(err)
			}
			return u.Read, u.Close
		}},
		{"udp", func(t *testing.T) (func(*Batch) (int, error), func() error) {
			u, err := ListenUDP("127.0.0.1:0", 0)
			if err != nil {
				t.Fatal(err)
			}
			return u.Read, u.Close
		}},
		{"unix paced", func(t *testing.T) (func(*Batch) (int, error), func() error) {
			u, err := ListenUnix(UnixOptions{Path: filepath.Join(t.TempDir(), "s.sock"), Mode: 0o600})
			if err != nil {
				t.Fatal(err)
			}
			if err := u.Pace(time.Second, 11); err != nil {
				t.Fatal(err)
			}
			return u.Read, u.Close
		}},
		{"udp paced", func(t *testing.T) (func(*Batch) (int, error), func() error) {
			u, err := ListenUDP("127.0.0.1:0", 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := u.Pace(time.Second); err != nil {
				t.Fatal(err)
			}
			return u.Read, u.Close
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			read, closeFn := tc.open(t)
			done := make(chan error, 1)
			go func() {
				_, err := read(NewBatch())
				done <- err
			}()
			time.Sleep(20 * time.Millisecond)
			closeFn()
			select {
			case err := <-done:
				if !errors.Is(err, net.ErrClosed) {
					t.Fatalf("Read after Close: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Close did not wake a blocked Read")
			}
		})
	}
}
