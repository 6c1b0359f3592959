package listener

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// UDP is a bound UDP socket for plain or secure beats.
type UDP struct {
	conn   *net.UDPConn
	raw    syscall.RawConn
	rcvbuf int
	rd     reader
}

// ListenUDP binds addr ("IP:PORT"; port 0 picks a free one).
func ListenUDP(addr string, rcvbuf int) (*UDP, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("udp address %q: %w", addr, err)
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return nil, fmt.Errorf("bind udp %s: %w", addr, err)
	}
	u := &UDP{conn: conn}
	raw, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		return nil, err
	}
	u.raw = raw
	var serr error
	if err := raw.Control(func(fd uintptr) {
		if serr = enableTimestamps(int(fd)); serr == nil {
			serr = setRcvBuf(int(fd), rcvbuf, &u.rcvbuf)
		}
	}); err != nil || serr != nil {
		conn.Close()
		return nil, fmt.Errorf("udp %s receive buffer: %v %v", addr, err, serr)
	}
	u.rd.init(raw, false)
	return u, nil
}

// Addr returns the bound address.
func (u *UDP) Addr() net.Addr { return u.conn.LocalAddr() }

// RcvBuf returns the receive buffer size the kernel granted.
func (u *UDP) RcvBuf() int { return u.rcvbuf }

// HoldBatches makes every later Read that returns datagrams keep the
// listener busy until Release, so that Quiet is false while a batch read
// from the queue is still being processed. Call it before the first Read.
func (u *UDP) HoldBatches() { u.rd.hold = true }

// Release ends the hold of the last Read (see HoldBatches).
func (u *UDP) Release() { u.rd.release() }

// Quiet reports that no datagram waits in the receive queue and no held
// batch is being processed: every beat sent before the call has been
// handed on.
func (u *UDP) Quiet() bool { return u.rd.quiet() }

// Settled reports that every datagram that reached the socket before since
// (a Now reading) has been read and handed on (released, with
// HoldBatches): a receive that began at or after since found less than a
// full batch queued and its batch has been released, or the listener is
// Quiet. Unlike Quiet it holds under a steady stream of datagrams, which
// keeps the queue from ever being empty: datagrams that arrived after since
// do not matter.
func (u *UDP) Settled(since int64) bool { return u.rd.settled(since) }

// Queued reports whether a datagram is waiting to be read.
func (u *UDP) Queued() bool { return u.rd.queued() }

// Pace makes the reads coalesce at low rates (Unix.Pace); the queue's
// capacity is estimated from the granted receive buffer
// (UDPDatagramCost per datagram).
func (u *UDP) Pace(interval time.Duration) error {
	p, err := NewPacer(interval, u.rcvbuf/UDPDatagramCost)
	if err != nil {
		return err
	}
	return u.rd.startPacing(p, u.conn.Close)
}

// After is told by the receiving goroutine that a Read returned n
// datagrams, already handed on; it may pause (Pace).
func (u *UDP) After(n int) { u.rd.pace.After(n) }

// Kick ends a pause of the receiving goroutine at once (Pace).
func (u *UDP) Kick() { u.rd.pace.Kick() }

// Read blocks until at least one datagram arrives and fills b.
func (u *UDP) Read(b *Batch) (int, error) { return u.rd.read(b) }

// Close closes the socket.
func (u *UDP) Close() error {
	return u.rd.shutdown(u.conn.Close)
}

// IsLoopback reports whether the bind address of addr ("IP:PORT") is a
// loopback address.
func IsLoopback(addr string) bool {
	ap, err := netip.ParseAddrPort(addr)
	return err == nil && ap.Addr().IsLoopback()
}
