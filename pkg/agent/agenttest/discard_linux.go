package agenttest

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const discardBatch = 64

// discarder holds the recvmmsg vectors of Discard.
type discarder struct {
	raw  syscall.RawConn
	fn   func(fd uintptr) bool // bound once: no allocation per batch
	n    int
	err  syscall.Errno
	hdrs [discardBatch]unix.Mmsghdr
	iovs [discardBatch]unix.Iovec
	bufs [discardBatch][128]byte
}

// discardBatch waits until the socket is readable and reads up to
// discardBatch datagrams with one non-blocking recvmmsg.
func (r *Receiver) discardBatch() (int, error) {
	d := &r.discard
	if d.raw == nil {
		sc, ok := r.conn.(syscall.Conn)
		if !ok {
			return 0, net.ErrClosed
		}
		raw, err := sc.SyscallConn()
		if err != nil {
			return 0, err
		}
		d.raw = raw
		for i := range d.hdrs {
			d.iovs[i].Base = &d.bufs[i][0]
			d.iovs[i].SetLen(len(d.bufs[i]))
			d.hdrs[i].Hdr.Iov = &d.iovs[i]
			d.hdrs[i].Hdr.SetIovlen(1)
		}
		d.fn = d.recv
	}
	d.n, d.err = 0, 0
	if err := d.raw.Read(d.fn); err != nil {
		return 0, err
	}
	if d.err != 0 {
		return 0, d.err
	}
	return d.n, nil
}

func (d *discarder) recv(fd uintptr) bool {
	n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&d.hdrs[0])),
		discardBatch, unix.MSG_DONTWAIT|unix.MSG_TRUNC, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false // wait for readiness
	}
	d.n, d.err = int(n), e
	return true
}
