package listener

import (
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// waiter is the Pacer's pause: a non-blocking timerfd in the runtime's
// poller. kicked remembers a Kick that came before the pause began.
type waiter struct {
	f      *os.File
	raw    syscall.RawConn
	kicked atomic.Bool
	ts     unix.ItimerSpec
	setFn  func(fd uintptr) // arms the timer for ts, bound once
	readFn func(fd uintptr) bool
	buf    [8]byte
}

func newWaiter() (*waiter, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("timerfd_create", err)
	}
	f := os.NewFile(uintptr(fd), "varta-drain-timer")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	w := &waiter{f: f, raw: raw}
	w.setFn = func(fd uintptr) {
		unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, fd, 0, uintptr(unsafe.Pointer(&w.ts)), 0, 0, 0)
	}
	w.readFn = func(fd uintptr) bool {
		_, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&w.buf[0])), 8)
		return e != unix.EAGAIN && e != unix.EINTR
	}
	return w, nil
}

// pause waits until d has passed, a Kick, or close.
func (w *waiter) pause(d time.Duration) {
	w.ts = unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
	if w.raw.Control(w.setFn) != nil {
		return // closed
	}
	if w.kicked.Swap(false) {
		return
	}
	w.raw.Read(w.readFn)
	// The kick that ended this wait is used up. A kick that comes after
	// this line ends the next wait; one that came between the wake-up and
	// here is for work its sender queued before kicking, which the caller
	// takes now (the Pacer reads the socket, the control loop looks at
	// every source).
	w.kicked.Store(false)
}

// kick makes the timer expire now (and the next pause end at once if
// none is in progress). A kick while one is pending costs no system call:
// the pending one's timer is set, or the next pause sees the flag.
func (w *waiter) kick() {
	if w.kicked.Swap(true) {
		return
	}
	w.raw.Control(func(fd uintptr) {
		ts := unix.ItimerSpec{Value: unix.Timespec{Nsec: 1}}
		unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, fd, 0, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
	})
}

func (w *waiter) close() { w.f.Close() }
