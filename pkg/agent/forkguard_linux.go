package agent

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// pidSource tells the sender's pid at every send without a system call
// while the process has not forked: it keeps one private anonymous page
// marked MADV_WIPEONFORK (Linux 4.14 and later), in which the kernel hands a
// forked child a zero-filled copy. A non-zero mark therefore means "same
// process as when the pid was last read"; a zero mark makes the next read
// call getpid and set the mark again. Where the page cannot be set up (an
// older kernel refuses the advice), every read calls getpid.
type pidSource struct {
	mark *uint32 // in the wipe-on-fork page; nil: always call getpid
}

// newPidSource sets up the page for owner; it is unmapped once owner is
// unreachable.
func newPidSource(owner *Agent) pidSource {
	page, err := unix.Mmap(-1, 0, unix.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return pidSource{}
	}
	if unix.Madvise(page, unix.MADV_WIPEONFORK) != nil {
		_ = unix.Munmap(page)
		return pidSource{}
	}
	runtime.AddCleanup(owner, func(p []byte) { _ = unix.Munmap(p) }, page)
	return pidSource{mark: (*uint32)(unsafe.Pointer(&page[0]))}
}

// read returns the pid of the calling process; last is the value it
// returned before. The caller serialises calls (the Agent's mutex).
func (s pidSource) read(last uint32) uint32 {
	if s.mark != nil && *s.mark != 0 && last != 0 {
		return last
	}
	pid := uint32(unix.Getpid())
	if s.mark != nil {
		*s.mark = 1
	}
	return pid
}

// wiped reports whether the mark is clear (a forked child before its first
// send), for tests.
func (s pidSource) wiped() bool { return s.mark != nil && *s.mark == 0 }

// rawWrite sends b on the non-blocking socket fd. A send on a non-blocking
// datagram socket never sleeps, so it is a raw system call: it skips the
// runtime's bookkeeping for calls that may block (handing the P off,
// waking sysmon), which costs as much as the rest of a beat.
func rawWrite(fd int, b []byte) unix.Errno {
	_, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	return e
}
