package listener

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// boundSocket creates a socket of the given type bound to path, the way
// the service manager does for a .socket unit, and returns it as a file.
func boundSocket(t *testing.T, domain, typ int, path string) *os.File {
	t.Helper()
	fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var sa unix.Sockaddr
	switch domain {
	case unix.AF_UNIX:
		sa = &unix.SockaddrUnix{Name: path}
	case unix.AF_INET:
		sa = &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	return os.NewFile(uintptr(fd), "test-socket")
}

func TestInheritUnixReceivesWithCredentialsAndKeepsFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "varta.sock")
	f := boundSocket(t, unix.AF_UNIX, unix.SOCK_DGRAM, p)
	// A beat queued before the observer takes the socket: SO_PASSCRED is
	// off on this socket (no PassCredentials=yes), so it has no credentials.
	c := dial(t, p)
	if _, err := c.Write(make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	u, err := OpenUnix(UnixOptions{Path: p, Mode: 0o600, RcvBuf: 1 << 20}, []*os.File{f})
	if err != nil {
		t.Fatal(err)
	}
	if !u.Inherited() || u.Path() != p || u.RcvBuf() < 1<<20 {
		t.Fatalf("inherited %v path %q rcvbuf %d", u.Inherited(), u.Path(), u.RcvBuf())
	}
	if _, err := c.Write(make([]byte, 33)); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, u, 2)
	if got[0].Len != 32 || got[1].Len != 33 {
		t.Fatalf("lengths %d %d", got[0].Len, got[1].Len)
	}
	if !got[1].HasCreds || got[1].Pid != int32(os.Getpid()) || got[1].Uid != uint32(os.Geteuid()) {
		t.Fatalf("second datagram credentials %+v", got[1])
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(p); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("inherited socket file removed on Close: %v", err)
	}
	if err := f.Close(); err == nil {
		t.Fatal("the inherited descriptor was not consumed")
	}
}

func TestInheritUnixRefuses(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "varta.sock")
	regular := filepath.Join(dir, "plain")
	if err := os.WriteFile(regular, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		file func() *os.File
		path string
		want error
	}{
		{"stream socket", func() *os.File { return boundSocket(t, unix.AF_UNIX, unix.SOCK_STREAM, p+".stream") }, p + ".stream", ErrInheritedNotDgram},
		{"udp socket", func() *os.File { return boundSocket(t, unix.AF_INET, unix.SOCK_DGRAM, "") }, p, ErrInheritedNotUnix},
		{"regular file", func() *os.File {
			f, err := os.Open(regular)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}, p, ErrInheritedNotUnix},
		{"other path", func() *os.File { return boundSocket(t, unix.AF_UNIX, unix.SOCK_DGRAM, p+".other") }, p, ErrInheritedPath},
		{"abstract", func() *os.File { return boundSocket(t, unix.AF_UNIX, unix.SOCK_DGRAM, "@varta-test-abstract") }, "", ErrInheritedPath},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.file()
			u, err := InheritUnix(f, UnixOptions{Path: tc.path})
			if !errors.Is(err, tc.want) {
				if u != nil {
					u.Close()
				}
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if f.Close() == nil {
				t.Error("refused descriptor left open")
			}
		})
	}
}

func TestOpenUnixRefusesSeveralDescriptors(t *testing.T) {
	dir := t.TempDir()
	a := boundSocket(t, unix.AF_UNIX, unix.SOCK_DGRAM, filepath.Join(dir, "a.sock"))
	b := boundSocket(t, unix.AF_UNIX, unix.SOCK_DGRAM, filepath.Join(dir, "b.sock"))
	if _, err := OpenUnix(UnixOptions{Path: filepath.Join(dir, "a.sock")}, []*os.File{a, b}); err == nil {
		t.Fatal("two inherited descriptors accepted")
	}
	if a.Close() == nil || b.Close() == nil {
		t.Error("descriptors left open")
	}
}
