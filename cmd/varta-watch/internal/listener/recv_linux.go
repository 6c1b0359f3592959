package listener

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// KernelCredentials reports whether this platform attaches the sender's
// pid and uid to every Unix datagram.
const KernelCredentials = true

var (
	cmsgHdrLen = unix.CmsgLen(0)
	credSpace  = unix.CmsgSpace(unix.SizeofUcred)
	tsSize     = int(unsafe.Sizeof(unix.Timespec{}))
	ctrlSize   = credSpace + unix.CmsgSpace(tsSize) + unix.CmsgSpace(4*maxFDs)
)

type batchSys struct {
	hdrs  [BatchSize]unix.Mmsghdr
	iovs  [BatchSize]unix.Iovec
	ctrl  [BatchSize][]byte
	names [BatchSize]unix.RawSockaddrInet6 // UDP source addresses (IPv4 fits)
}

func (b *Batch) init() {
	ctrl := make([]byte, BatchSize*ctrlSize)
	for i := range b.sys.hdrs {
		b.sys.iovs[i].Base = &b.bufs[i][0]
		b.sys.iovs[i].SetLen(BufSize)
		b.sys.ctrl[i] = ctrl[i*ctrlSize : (i+1)*ctrlSize]
		h := &b.sys.hdrs[i].Hdr
		h.Iov = &b.sys.iovs[i]
		h.SetIovlen(1)
	}
}

// setupUnixSocket enables SO_PASSCRED and SO_TIMESTAMPNS and sizes the
// receive buffer.
func setupUnixSocket(fd, rcvbuf int, granted *int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		return errors.Join(errors.New("enable SO_PASSCRED"), err)
	}
	if err := enableTimestamps(fd); err != nil {
		return err
	}
	return setRcvBuf(fd, rcvbuf, granted)
}

// enableTimestamps asks the kernel to stamp every datagram with its
// arrival time (SO_TIMESTAMPNS, CLOCK_REALTIME).
func enableTimestamps(fd int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return errors.Join(errors.New("enable SO_TIMESTAMPNS"), err)
	}
	return nil
}

func setRcvBuf(fd, rcvbuf int, granted *int) error {
	if rcvbuf > 0 {
		// SO_RCVBUFFORCE lifts the rmem_max cap when we may; fall back to
		// SO_RCVBUF otherwise. The kernel doubles the value for bookkeeping.
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf) != nil {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf); err != nil {
				return errors.Join(errors.New("set SO_RCVBUF"), err)
			}
		}
	}
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	if err != nil {
		return errors.Join(errors.New("get SO_RCVBUF"), err)
	}
	*granted = v
	return nil
}

// reader receives through the runtime's network poller: the goroutine
// parks until the socket is readable, then drains it with non-blocking
// recvmmsg calls of up to 64 datagrams. The receive is a raw system call
// (it never blocks), so it neither hands the P off nor wakes the runtime's
// sysmon thread: a lone beat costs one poller wake-up and one recvmmsg,
// which is what keeps an idle fleet cheap. Close wakes a parked reader.
type reader struct {
	raw    syscall.RawConn
	unix   bool
	batch  *Batch
	n      int
	errno  syscall.Errno
	fn     func(fd uintptr) bool // bound once: no allocation per Read
	closed atomic.Bool
	// With hold set, a Read that returns datagrams keeps held locked
	// until release: quiet can then tell a batch still being processed
	// from an idle listener.
	hold   bool
	held   sync.Mutex
	locked bool
	// caught is the settled mark (Now): every datagram that arrived
	// before it has been read and handed on. It is the start of the
	// latest receive that emptied the queue (it returned less than a full
	// batch, or nothing), or a full batch's arrival mark (arrivalMark),
	// once that batch has been handed on. The receiving goroutine
	// publishes it (pending until its batch is released); settled reads
	// it.
	caught    atomic.Int64
	pendingAt int64
	pending   bool
	// recvAt and recvOff are the last receive's start (Now) and the
	// offset between Now and the wall clock then (Now − Unix ns), which
	// moves a datagram's kernel arrival time onto Now's clock. stepped is
	// set when that offset moved by more than ArrivalSlack between two
	// receives (the wall clock was stepped) and cleared by the next
	// receive that empties the queue: until then a queued datagram's
	// arrival time may be on the old wall clock, so arrival marks are not
	// published (see arrivalMark).
	recvAt   int64
	recvOff  int64
	offKnown bool
	stepped  bool

	// Paced reads (startPacing, --drain-interval-ms): the socket is taken
	// out of the runtime's poller, whose edge-triggered registration
	// would wake a thread for every datagram even while the goroutine
	// pauses, and waited on through a private epoll instance with a
	// one-shot registration, armed only when a read found the socket
	// empty: one wake-up per arming, however many datagrams follow. The
	// private instance sits in the runtime's poller itself.
	pace *Pacer
	// pmu is read-held by the receiving goroutine around its system
	// calls on pfd, and held by shutdown to close it. Lock order: pmu,
	// then held; quiet takes held alone and reads pfd atomically.
	pmu    sync.RWMutex
	pfd    atomic.Int32 // the socket in paced mode; -1 when not paced or stopped
	ep     *os.File     // the private epoll instance
	epRaw  syscall.RawConn
	evs    [1]unix.EpollEvent
	waitFn func(fd uintptr) bool // r.epReady, bound once
	armFn  func(fd uintptr)      // r.arm, bound once
	armErr error
}

func (r *reader) init(raw syscall.RawConn, isUnix bool) {
	r.raw = raw
	r.unix = isUnix
	r.fn = r.recv
	r.pfd.Store(-1)
}

// startPacing switches to paced reads with p (see the reader's fields);
// closeConn closes the socket's original descriptor, which removes it
// from the runtime's poller (a duplicate keeps the socket open). With a
// zero interval nothing changes. Call it before the first Read.
func (r *reader) startPacing(p *Pacer, closeConn func() error) error {
	if p.Interval() <= 0 {
		return nil
	}
	if err := r.pacedSocket(closeConn); err != nil {
		p.Close()
		return err
	}
	r.pace = p
	return nil
}

// pacedSocket takes the socket out of the runtime's poller (startPacing).
func (r *reader) pacedSocket(closeConn func() error) error {
	var dup int
	var derr error
	if err := r.raw.Control(func(fd uintptr) { dup, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil || derr != nil {
		return fmt.Errorf("drain interval: duplicate the socket: %w", errors.Join(err, derr))
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		unix.Close(dup)
		return fmt.Errorf("drain interval: epoll_create1: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLONESHOT, Fd: int32(dup)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, dup, &ev); err != nil {
		unix.Close(dup)
		unix.Close(epfd)
		return fmt.Errorf("drain interval: epoll_ctl: %w", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(dup)
		unix.Close(epfd)
		return fmt.Errorf("drain interval: %w", err)
	}
	ep := os.NewFile(uintptr(epfd), "varta-drain-epoll")
	epRaw, err := ep.SyscallConn()
	if err != nil {
		unix.Close(dup)
		ep.Close()
		return fmt.Errorf("drain interval: %w", err)
	}
	closeConn()
	r.pfd.Store(int32(dup))
	r.ep, r.epRaw = ep, epRaw
	r.waitFn, r.armFn = r.epReady, r.arm
	return nil
}

// paced reports paced reads.
func (r *reader) paced() bool { return r.ep != nil }

// shutdown marks the reader closed and runs closeFn (closing the socket
// wakes a parked reader with net.ErrClosed). In paced mode it closes the
// private epoll instance (waking a parked reader), ends a pause and
// closes the socket once no read uses it.
func (r *reader) shutdown(closeFn func() error) error {
	r.closed.Store(true)
	if !r.paced() {
		return closeFn()
	}
	r.ep.Close()
	r.pace.Close()
	r.pmu.Lock()
	defer r.pmu.Unlock()
	fd := r.pfd.Swap(-1)
	if fd < 0 {
		return nil
	}
	return unix.Close(int(fd))
}

// epReady consumes the private epoll instance's event: true once the
// socket became readable (its one-shot registration fired).
func (r *reader) epReady(fd uintptr) bool {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&r.evs[0])), 1, 0, 0, 0)
	return e == 0 && n > 0
}

// arm re-arms the socket's one-shot registration (pmu read-held). If a
// datagram is already queued the kernel reports it at once.
func (r *reader) arm(fd uintptr) {
	sock := r.pfd.Load()
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLONESHOT, Fd: sock}
	r.armErr = unix.EpollCtl(int(fd), unix.EPOLL_CTL_MOD, int(sock), &ev)
}

// readPaced is read in paced mode: receive what is queued; when nothing
// is, arm the one-shot registration and park until it fires.
func (r *reader) readPaced() error {
	for {
		if r.closed.Load() {
			return net.ErrClosed
		}
		r.pmu.RLock()
		sock := r.pfd.Load()
		if sock < 0 {
			r.pmu.RUnlock()
			return net.ErrClosed
		}
		if r.recv(uintptr(sock)) {
			r.pmu.RUnlock()
			return nil
		}
		err := r.epRaw.Control(r.armFn)
		r.pmu.RUnlock()
		if err == nil {
			err = r.armErr
		}
		if err == nil {
			err = r.epRaw.Read(r.waitFn)
		}
		if err != nil {
			if r.closed.Load() {
				return net.ErrClosed
			}
			return err
		}
	}
}

func (r *reader) recv(fd uintptr) bool {
	if r.hold {
		r.held.Lock()
		r.locked = true
	}
	b := r.batch
	for i := range b.sys.hdrs {
		h := &b.sys.hdrs[i].Hdr
		h.Control = &b.sys.ctrl[i][0]
		h.SetControllen(ctrlSize)
		if !r.unix {
			h.Name = (*byte)(unsafe.Pointer(&b.sys.names[i]))
			h.Namelen = unix.SizeofSockaddrInet6
		}
		h.Flags = 0
		b.sys.hdrs[i].Len = 0
	}
	t := time.Now()
	at := int64(t.Sub(epoch))
	r.noteOffset(at, at-t.UnixNano())
	n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.sys.hdrs[0])),
		BatchSize, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC|unix.MSG_TRUNC, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		r.release()
		if e == unix.EAGAIN {
			// Nothing was queued at at: the earlier batches, all handed
			// on, held everything that arrived before it.
			r.stepped = false
			r.advance(at)
		}
		return false // wait for readiness
	}
	r.n, r.errno = int(n), e
	if e == 0 && n < BatchSize {
		// This receive took everything that had arrived before at; that
		// is settled once this batch has been handed on.
		r.stepped = false
		r.pendingAt, r.pending = at, true
	}
	return true
}

// ArrivalSlack is how far the kernel's arrival stamps of one socket's
// queue may be out of order (datagrams stamped on different CPUs before
// they reach the queue), and how far the wall clock may move against Now
// between two receives before it counts as stepped.
const ArrivalSlack = int64(time.Millisecond)

// noteOffset records a receive's start and clock offset, and notes a step
// of the wall clock since the previous receive.
func (r *reader) noteOffset(at, off int64) {
	if r.offKnown && (off-r.recvOff > ArrivalSlack || r.recvOff-off > ArrivalSlack) {
		r.stepped = true
	}
	r.recvAt, r.recvOff, r.offKnown = at, off, true
}

// arrivalMark is the settled mark a full batch earns (ok false when it
// earns none): a socket's queue is FIFO, so once the batch holding a
// datagram that arrived at A has been handed on, so has every datagram
// that arrived before A − ArrivalSlack. Under a steady stream, where no
// receive ever returns less than a full batch, this is what lets a stall
// decision go ahead as soon as what was queued before it has been read.
// The mark is never after the receive's start, and none is earned while
// the wall clock may have been stepped under the queue (stepped).
func (r *reader) arrivalMark(arrival int64) (mark int64, ok bool) {
	if arrival == 0 || r.stepped || !r.offKnown {
		return 0, false
	}
	return min(arrival+r.recvOff, r.recvAt) - ArrivalSlack, true
}

// advance moves the settled mark forward to v (it never goes back).
func (r *reader) advance(v int64) {
	if v > r.caught.Load() {
		r.caught.Store(v)
	}
}

func (r *reader) read(b *Batch) (int, error) {
	r.publish() // the previous batch has been handed on
	r.batch = b
	r.n, r.errno = 0, 0
	if r.closed.Load() {
		return 0, net.ErrClosed
	}
	var err error
	if r.paced() {
		err = r.readPaced()
	} else {
		err = r.raw.Read(r.fn)
	}
	if err != nil {
		r.release()
		return 0, err
	}
	if r.errno != 0 {
		r.release()
		return 0, r.errno
	}
	n := r.n
	for i := 0; i < n; i++ {
		m := &b.sys.hdrs[i]
		d := &b.D[i]
		ln := int(m.Len)
		d.Len = ln
		d.Truncated = m.Hdr.Flags&unix.MSG_TRUNC != 0 || ln > BufSize
		if ln > BufSize {
			ln = BufSize
		}
		d.Data = b.bufs[i][:ln]
		d.CtrlTruncated = m.Hdr.Flags&unix.MSG_CTRUNC != 0
		d.HasCreds, d.FDs = false, 0
		d.Pid, d.Uid, d.Gid = 0, 0, 0
		d.Arrival = 0
		parseControl(b.sys.ctrl[i][:m.Hdr.Controllen], d)
		if !r.unix {
			d.From = sockaddrPort(&b.sys.names[i], m.Hdr.Namelen)
		}
	}
	if n == BatchSize && !r.pending {
		if mark, ok := r.arrivalMark(b.D[n-1].Arrival); ok {
			r.pendingAt, r.pending = mark, true
		}
	}
	return n, nil
}

// sockaddrPort converts a received IPv4 or IPv6 source address (an IPv4
// address mapped into IPv6 is unmapped) without allocating.
func sockaddrPort(sa *unix.RawSockaddrInet6, n uint32) netip.AddrPort {
	switch {
	case sa.Family == unix.AF_INET && n >= unix.SizeofSockaddrInet4:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	case sa.Family == unix.AF_INET6 && n >= unix.SizeofSockaddrInet6:
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), port)
	}
	return netip.AddrPort{}
}

// closeFD closes a descriptor received with SCM_RIGHTS (a variable so the
// fuzz test does not close its own descriptors).
var closeFD = func(fd int) { unix.Close(fd) }

// parseControl walks the control messages without allocating: it reads
// SCM_CREDENTIALS and SCM_TIMESTAMPNS and closes every SCM_RIGHTS
// descriptor.
func parseControl(buf []byte, d *Datagram) {
	for len(buf) >= cmsgHdrLen {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&buf[0]))
		l := int(h.Len)
		if l < cmsgHdrLen || l > len(buf) {
			return
		}
		data := buf[cmsgHdrLen:l]
		if h.Level == unix.SOL_SOCKET {
			switch h.Type {
			case unix.SCM_CREDENTIALS:
				if len(data) >= unix.SizeofUcred {
					uc := (*unix.Ucred)(unsafe.Pointer(&data[0]))
					d.HasCreds, d.Pid, d.Uid, d.Gid = true, uc.Pid, uc.Uid, uc.Gid
				}
			case unix.SCM_TIMESTAMPNS:
				if len(data) >= tsSize {
					ts := (*unix.Timespec)(unsafe.Pointer(&data[0]))
					d.Arrival = ts.Nano()
				}
			case unix.SCM_RIGHTS:
				for len(data) >= 4 {
					fd := int(int32(binary.NativeEndian.Uint32(data)))
					closeFD(fd)
					d.FDs++
					data = data[4:]
				}
			}
		}
		sp := unix.CmsgSpace(l - cmsgHdrLen)
		if sp > len(buf) {
			return
		}
		buf = buf[sp:]
	}
}

// publish makes the pending mark the settled mark (the batch it was
// earned by has been handed on).
func (r *reader) publish() {
	if r.pending {
		r.pending = false
		r.advance(r.pendingAt)
	}
}

// release ends the hold of the last Read.
func (r *reader) release() {
	r.publish()
	if r.locked {
		r.locked = false
		r.held.Unlock()
	}
}

// quiet reports that nothing waits in the queue and no held batch is
// being processed.
func (r *reader) quiet() bool {
	if !r.held.TryLock() {
		return false
	}
	defer r.held.Unlock()
	return !r.queued()
}

// settled reports that every datagram that arrived before since (Now) has
// been read and handed on: a receive begun at or after since emptied the
// queue and its batch was released, or a released full batch held a
// datagram that arrived at least ArrivalSlack after since (arrivalMark),
// or the listener is quiet now.
func (r *reader) settled(since int64) bool {
	return r.caught.Load() >= since || r.quiet()
}

// queued reports whether a datagram is waiting in the socket's receive
// queue (SIOCINQ: the size of the next datagram, 0 when none).
func (r *reader) queued() bool {
	n := 0
	if r.paced() {
		// Not under pmu (see the lock order); only a shutdown racing with
		// this call could make it ask a descriptor number reused meanwhile,
		// and the observer never drains while it shuts down.
		if fd := r.pfd.Load(); fd >= 0 {
			n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
		}
		return n > 0
	}
	if err := r.raw.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil {
		return false
	}
	return n > 0
}
