//go:build !linux

package listener

import (
	"net/netip"
	"syscall"
)

// KernelCredentials reports whether this platform attaches the sender's
// pid and uid to every Unix datagram. Elsewhere beats are SocketModeOnly.
const KernelCredentials = false

type batchSys struct{}

func (b *Batch) init() {}

func setupUnixSocket(fd, rcvbuf int, granted *int) error { return setRcvBuf(fd, rcvbuf, granted) }

// enableTimestamps is a no-op here: arrival times are Linux-only.
func enableTimestamps(int) error { return nil }

func setRcvBuf(fd, rcvbuf int, granted *int) error {
	if rcvbuf > 0 {
		if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf); err != nil {
			return err
		}
	}
	v, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	if err != nil {
		return err
	}
	*granted = v
	return nil
}

// reader receives one datagram per call (no recvmmsg, no credentials).
type reader struct {
	raw  syscall.RawConn
	unix bool
	n    int
	from syscall.Sockaddr
	b    *Batch
	fn   func(fd uintptr) bool
	err  error
	hold bool
	pace *Pacer
}

// startPacing keeps the runtime's poller here: the reads are paced, but
// a datagram arriving during a pause still wakes a thread.
func (r *reader) startPacing(p *Pacer, _ func() error) error {
	r.pace = p
	return nil
}

// shutdown closes the socket; closing wakes the poller.
func (r *reader) shutdown(closeFn func() error) error {
	r.pace.Close()
	return closeFn()
}

func (r *reader) init(raw syscall.RawConn, isUnix bool) {
	r.raw, r.unix = raw, isUnix
	r.fn = r.recv
}

func (r *reader) recv(fd uintptr) bool {
	n, from, err := syscall.Recvfrom(int(fd), r.b.bufs[0][:], 0)
	if err == syscall.EAGAIN || err == syscall.EINTR {
		return false
	}
	r.n, r.from, r.err = n, from, err
	return true
}

func (r *reader) read(b *Batch) (int, error) {
	r.b = b
	b.D[0] = Datagram{}
	if err := r.raw.Read(r.fn); err != nil {
		return 0, err
	}
	if r.err != nil {
		return 0, r.err
	}
	d := &b.D[0]
	d.Len = r.n
	d.Truncated = r.n > BufSize
	ln := r.n
	if ln > BufSize {
		ln = BufSize
	}
	d.Data = b.bufs[0][:ln]
	switch sa := r.from.(type) {
	case *syscall.SockaddrInet4:
		d.From = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *syscall.SockaddrInet6:
		d.From = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port))
	}
	return 1, nil
}

// release, quiet and settled: holding is Linux-only; quiet and settled
// report true.
func (r *reader) release()           {}
func (r *reader) quiet() bool        { return true }
func (r *reader) settled(int64) bool { return true }

// queued is unknown here: it reports false (no wait before stall
// decisions).
func (r *reader) queued() bool { return false }
