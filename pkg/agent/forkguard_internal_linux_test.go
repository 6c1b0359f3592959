package agent

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPidSourceMark: on a kernel with MADV_WIPEONFORK (4.14 and later) the
// pid source keeps a mark, clear until the first read and set after it;
// every read returns the process's pid.
func TestPidSourceMark(t *testing.T) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	s := newPidSource(&Agent{})
	if s.mark == nil {
		t.Skipf("kernel %s refuses MADV_WIPEONFORK: every send calls getpid", unix.ByteSliceToString(u.Release[:]))
	}
	if !s.wiped() {
		t.Fatal("a new mark is set before the first read")
	}
	want := uint32(os.Getpid())
	if got := s.read(0); got != want {
		t.Fatalf("first read %d, want %d", got, want)
	}
	if s.wiped() {
		t.Fatal("mark still clear after a read")
	}
	if got := s.read(want); got != want {
		t.Fatalf("second read %d, want %d", got, want)
	}
	// A wiped mark (what a forked child sees) makes the next read ask the
	// kernel rather than trust the last value.
	*s.mark = 0
	if got := s.read(12345); got != want {
		t.Fatalf("read after a wipe returned %d, want getpid's %d", got, want)
	}
}
