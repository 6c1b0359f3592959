package agenttest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/varta-go/varta/pkg/vlp"
)

// ErrTimeout is returned by Recv when nothing arrived in time.
var ErrTimeout = errors.New("agenttest: no datagram before the deadline")

// Datagram is one received datagram.
type Datagram struct {
	// Data holds the datagram's bytes.
	Data []byte
	// HasCred reports whether the kernel attached the sender's credentials
	// (Unix socket on Linux).
	HasCred bool
	// Pid and Uid are the kernel-reported sender pid and uid when HasCred.
	Pid int32
	Uid uint32
}

// Frame decodes d as a 32-byte VLP frame.
func (d Datagram) Frame() (vlp.Frame, error) {
	var f vlp.Frame
	if err := vlp.Decode(d.Data, &f); err != nil {
		return f, fmt.Errorf("agenttest: decode %d-byte datagram: %w", len(d.Data), err)
	}
	return f, nil
}

// Receiver is a bound datagram socket that reads what agents send.
type Receiver struct {
	conn net.PacketConn
	path string // Unix socket path, removed on Close
	cred bool
	buf  [512]byte
	oob  [512]byte

	received atomic.Uint64 // datagrams read by Discard
	discard  discarder
}

// ListenUnix binds a Unix datagram socket at path. On Linux it enables
// SO_PASSCRED so every datagram carries the sender's pid and uid.
func ListenUnix(path string) (*Receiver, error) {
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("agenttest: bind %q: %w", path, err)
	}
	r := &Receiver{conn: c, path: path}
	if err := enableCred(c); err != nil {
		c.Close()
		return nil, fmt.Errorf("agenttest: enable credentials on %q: %w", path, err)
	}
	r.cred = credSupported
	return r, nil
}

// ListenUDP binds a UDP socket at addr (for example "127.0.0.1:0").
func ListenUDP(addr string) (*Receiver, error) {
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("agenttest: bind %s: %w", addr, err)
	}
	return &Receiver{conn: c}, nil
}

// Addr is the socket path (Unix) or host:port (UDP) agents should send to.
func (r *Receiver) Addr() string {
	if r.path != "" {
		return r.path
	}
	return r.conn.LocalAddr().String()
}

// SetReadBuffer sets SO_RCVBUF (a small value makes the queue fill fast; a
// large one lets a test receiver fall behind without losing datagrams). On
// Linux it first tries SO_RCVBUFFORCE, which is not capped by
// net.core.rmem_max when the process is privileged.
func (r *Receiver) SetReadBuffer(n int) error {
	if forceReadBuffer(r.conn, n) == nil {
		return nil
	}
	type rb interface{ SetReadBuffer(int) error }
	if err := r.conn.(rb).SetReadBuffer(n); err != nil {
		return fmt.Errorf("agenttest: set receive buffer: %w", err)
	}
	return nil
}

// Recv waits up to timeout for one datagram. It returns ErrTimeout when none
// arrived. Recv is not safe for concurrent use.
func (r *Receiver) Recv(timeout time.Duration) (Datagram, error) {
	if err := r.conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return Datagram{}, fmt.Errorf("agenttest: set deadline: %w", err)
	}
	var (
		n, oobn int
		err     error
	)
	if uc, ok := r.conn.(*net.UnixConn); ok {
		n, oobn, _, _, err = uc.ReadMsgUnix(r.buf[:], r.oob[:])
	} else {
		n, _, err = r.conn.ReadFrom(r.buf[:])
	}
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return Datagram{}, ErrTimeout
		}
		return Datagram{}, fmt.Errorf("agenttest: receive: %w", err)
	}
	d := Datagram{Data: append([]byte(nil), r.buf[:n]...)}
	if r.cred && oobn > 0 {
		d.Pid, d.Uid, d.HasCred = parseCred(r.oob[:oobn])
	}
	return d, nil
}

// RecvFrame waits for one datagram and decodes it as a plain VLP frame.
func (r *Receiver) RecvFrame(timeout time.Duration) (vlp.Frame, Datagram, error) {
	d, err := r.Recv(timeout)
	if err != nil {
		return vlp.Frame{}, d, err
	}
	f, err := d.Frame()
	return f, d, err
}

// Drain reads until nothing arrives for quiet and returns what it read.
func (r *Receiver) Drain(quiet time.Duration) ([]Datagram, error) {
	var out []Datagram
	for {
		d, err := r.Recv(quiet)
		if errors.Is(err, ErrTimeout) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, d)
	}
}

// Discard reads and throws away datagrams without allocating until the
// Receiver is closed, and returns how many it read. Run it in a goroutine to
// keep a sender's queue empty (benchmarks); Received reports the count while
// it runs. On Linux it reads in batches (recvmmsg through the runtime's
// poller, like the observer), so it keeps up with a sender in a tight loop.
func (r *Receiver) Discard() int {
	for {
		n, err := r.discardBatch()
		if n > 0 {
			r.received.Add(uint64(n))
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return int(r.received.Load())
			}
		}
	}
}

// Received returns how many datagrams Discard has read so far. It is safe
// to call while Discard runs.
func (r *Receiver) Received() uint64 { return r.received.Load() }

// Close closes the socket and removes a Unix socket's path, so that agents
// see the observer as gone.
func (r *Receiver) Close() error {
	err := r.conn.Close()
	if r.path != "" {
		if rerr := os.Remove(r.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
			err = rerr
		}
	}
	if err != nil {
		return fmt.Errorf("agenttest: close: %w", err)
	}
	return nil
}

// ReadBuffer returns the socket's SO_RCVBUF as the kernel reports it (twice
// the size set, for bookkeeping), or 0 when it cannot be read.
func (r *Receiver) ReadBuffer() int {
	sc, ok := r.conn.(syscall.Conn)
	if !ok {
		return 0
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	_ = rc.Control(func(fd uintptr) {
		n, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	})
	return n
}
