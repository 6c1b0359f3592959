package agent

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/pkg/vlp"
)

// BenchmarkBeatSelfCost isolates what Beat adds to the send: the Agent's
// socket is swapped for /dev/null, whose write system call does no work,
// so beat minus raw (the same 32-byte raw write to /dev/null) is the
// Agent's own cost per beat: lock, pid check, clock, encoding and CRC,
// counters and the result.
func BenchmarkBeatSelfCost(b *testing.B) {
	p := filepath.Join(b.TempDir(), "obs.sock")
	rfd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(rfd)
	if err := unix.Bind(rfd, &unix.SockaddrUnix{Name: p}); err != nil {
		b.Fatal(err)
	}
	a, err := Connect(Options{SocketPath: p})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer null.Close()
	a.mu.Lock()
	sock := a.fd
	a.fd = int(null.Fd())
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.fd = sock
		a.mu.Unlock()
	}()
	var frame [vlp.FrameSize]byte
	b.Run("send=raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if e := rawWrite(a.fd, frame[:]); e != 0 {
				b.Fatal(e)
			}
		}
	})
	b.Run("send=beat", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if r := a.Beat(vlp.StatusOk, 1); !r.Sent() {
				b.Fatal(r)
			}
		}
	})
}
