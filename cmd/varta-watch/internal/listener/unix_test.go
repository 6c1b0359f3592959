package listener

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
)

func listen(t *testing.T) (*Unix, string) {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "varta.sock")
	u, err := ListenUnix(UnixOptions{Path: p, Mode: 0o600, RcvBuf: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	return u, p
}

func dial(t *testing.T, p string) *net.UnixConn {
	t.Helper()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: p, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readAll(t *testing.T, u *Unix, want int) []Datagram {
	t.Helper()
	var got []Datagram
	b := NewBatch()
	for len(got) < want {
		n, err := u.Read(b)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			d := b.D[i]
			d.Data = append([]byte(nil), d.Data...)
			got = append(got, d)
		}
	}
	return got
}

func TestUnixCredentialsAndSizes(t *testing.T) {
	u, p := listen(t)
	c := dial(t, p)
	sizes := []int{32, 0, 31, 33, 60, 200}
	for _, n := range sizes {
		if _, err := c.Write(make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
	got := readAll(t, u, len(sizes))
	for i, d := range got {
		if d.Len != sizes[i] {
			t.Errorf("datagram %d: len %d, want %d", i, d.Len, sizes[i])
		}
		if d.Truncated != (sizes[i] > BufSize) {
			t.Errorf("datagram %d: truncated=%v", i, d.Truncated)
		}
		if KernelCredentials {
			if !d.HasCreds || int(d.Pid) != os.Getpid() || int(d.Uid) != os.Geteuid() {
				t.Errorf("datagram %d: creds %v pid %d uid %d", i, d.HasCreds, d.Pid, d.Uid)
			}
		}
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v", fi.Mode(), err)
	}
	if u.RcvBuf() <= 0 {
		t.Fatal("granted receive buffer not reported")
	}
}

func TestStaleAndLiveSocket(t *testing.T) {
	u, p := listen(t)
	if _, err := ListenUnix(UnixOptions{Path: p, Mode: 0o600}); !errors.Is(err, ErrObserverRunning) {
		t.Fatalf("second listener on a live socket: %v", err)
	}
	// Leave a stale socket file behind: a socket nobody reads from.
	u.conn.Close()
	if _, err := os.Lstat(p); err != nil {
		t.Fatal("socket file should still exist for the stale case")
	}
	u2, err := ListenUnix(UnixOptions{Path: p, Mode: 0o600})
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	// The first listener's Close must not remove the new observer's socket.
	u.Close()
	if _, err := os.Lstat(p); err != nil {
		t.Fatal("closing the old listener removed the new socket")
	}
	u2.Close()
	if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket not removed on close: %v", err)
	}
}

func TestSocketPathRules(t *testing.T) {
	base := t.TempDir()
	open := filepath.Join(base, "open")
	sticky := filepath.Join(base, "sticky")
	real := filepath.Join(base, "real")
	link := filepath.Join(base, "link")
	for _, d := range []string{open, sticky, real} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(open, 0o777)
	os.Chmod(sticky, 0o777|os.ModeSticky)
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	regular := filepath.Join(real, "file")
	os.WriteFile(regular, nil, 0o600)
	for _, tc := range []struct {
		name, path string
		ok         bool
	}{
		{"missing dir", filepath.Join(base, "nope", "s.sock"), false},
		{"world-writable dir", filepath.Join(open, "s.sock"), false},
		{"sticky world-writable dir", filepath.Join(sticky, "s.sock"), true},
		{"symlinked dir", filepath.Join(link, "s.sock"), false},
		{"path is a regular file", regular, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := ListenUnix(UnixOptions{Path: tc.path, Mode: 0o600})
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if u != nil {
				u.Close()
			}
		})
	}
}
