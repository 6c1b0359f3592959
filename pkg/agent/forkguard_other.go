//go:build !linux

package agent

import (
	"golang.org/x/sys/unix"
)

// pidSource reads the pid with getpid at every send (the wipe-on-fork page
// of the Linux version has no portable equivalent).
type pidSource struct{}

func newPidSource(*Agent) pidSource { return pidSource{} }

func (pidSource) read(uint32) uint32 { return uint32(unix.Getpid()) }

func (pidSource) wiped() bool { return false }

// rawWrite sends b on the non-blocking socket fd.
func rawWrite(fd int, b []byte) unix.Errno {
	if _, err := unix.Write(fd, b); err != nil {
		if errno, ok := err.(unix.Errno); ok {
			return errno
		}
		return unix.EIO
	}
	return 0
}
