package listener

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestUnixClosesSmuggledFDs(t *testing.T) {
	if !KernelCredentials {
		t.Skip("SCM_RIGHTS accounting is Linux-only here")
	}
	u, p := listen(t)
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: p}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	oob := unix.UnixRights(int(f.Fd()), int(f.Fd()))
	if err := unix.Sendmsg(fd, make([]byte, 32), oob, nil, 0); err != nil {
		t.Fatal(err)
	}
	before := countFDs(t)
	d := readAll(t, u, 1)[0]
	if d.FDs != 2 {
		t.Fatalf("FDs = %d, want 2", d.FDs)
	}
	if after := countFDs(t); after > before {
		t.Fatalf("descriptor leak: %d open before receive, %d after", before, after)
	}
}

func countFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
