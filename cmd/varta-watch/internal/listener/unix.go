package listener

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrObserverRunning reports a live socket at the path: another observer
// is using it.
var ErrObserverRunning = errors.New("another observer is running")

// UnixOptions configure the Unix datagram listener.
type UnixOptions struct {
	Path string
	Mode os.FileMode // permission bits of the socket file
	// RcvBuf is the SO_RCVBUF request in bytes; 0 keeps the kernel default.
	RcvBuf int
	// Group, when set, is the group id given to the socket file
	// (--socket-group), so that agents of other users in that group can
	// reach it through the group bits of Mode.
	Group *uint32
}

// Unix is a bound Unix datagram socket.
type Unix struct {
	conn    *net.UnixConn
	raw     syscall.RawConn
	path    string
	dev     uint64
	ino     uint64
	ctime   unix.Timespec
	rcvbuf  int
	rd      reader
	stopped bool
	// inherited: the socket came from the service manager (activation.go);
	// its file is not ours to remove.
	inherited bool
}

// CheckSocketDir applies the directory rules: the parent directory must
// exist, must not be a symlink, and must not be group- or other-writable
// unless it is sticky.
func CheckSocketDir(path string) error {
	dir := filepath.Dir(path)
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("socket directory %q: %w", dir, err)
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("socket directory %q is a symlink (it must be a real directory)", dir)
	}
	if !fi.IsDir() {
		return fmt.Errorf("socket directory %q is not a directory", dir)
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&os.ModeSticky == 0 {
		return fmt.Errorf("socket directory %q is group/other-writable (mode %04o) and not sticky", dir, fi.Mode().Perm())
	}
	return nil
}

// ListenUnix binds the observer socket. A stale socket file (nobody
// listening) is replaced; a live one yields ErrObserverRunning.
func ListenUnix(o UnixOptions) (*Unix, error) {
	if err := CheckSocketDir(o.Path); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(o.Path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("socket path %q exists and is not a socket", o.Path)
		}
		c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: o.Path, Net: "unixgram"})
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("socket %q is live: %w", o.Path, ErrObserverRunning)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("probe existing socket %q: %w", o.Path, err)
		}
		if err := os.Remove(o.Path); err != nil {
			return nil, fmt.Errorf("remove stale socket %q: %w", o.Path, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("socket path %q: %w", o.Path, err)
	}

	// Credentials and the receive buffer are set before bind: a datagram
	// that arrives between bind and SO_PASSCRED would carry no
	// credentials and be refused. The umask makes the socket file appear
	// with its final mode instead of the process default.
	u := &Unix{path: o.Path}
	var serr error
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		if err := c.Control(func(fd uintptr) { serr = setupUnixSocket(int(fd), o.RcvBuf, &u.rcvbuf) }); err != nil {
			return err
		}
		return serr
	}}
	old := unix.Umask(int(0o777 &^ bindMode(o)))
	pc, err := lc.ListenPacket(context.Background(), "unixgram", o.Path)
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("bind %q: %w", o.Path, err)
	}
	conn := pc.(*net.UnixConn)
	u.conn = conn
	fail := func(err error) (*Unix, error) {
		conn.Close()
		os.Remove(o.Path)
		return nil, err
	}
	if err := setGroup(o.Path, o.Group); err != nil {
		return fail(err)
	}
	if err := os.Chmod(o.Path, o.Mode.Perm()); err != nil {
		return fail(fmt.Errorf("chmod socket %q: %w", o.Path, err))
	}
	var st unix.Stat_t
	if err := unix.Lstat(o.Path, &st); err != nil {
		return fail(fmt.Errorf("stat socket %q: %w", o.Path, err))
	}
	u.dev, u.ino, u.ctime = uint64(st.Dev), uint64(st.Ino), st.Ctim
	raw, err := conn.SyscallConn()
	if err != nil {
		return fail(err)
	}
	u.raw = raw
	u.rd.init(raw, true)
	return u, nil
}

// Path returns the socket path.
func (u *Unix) Path() string { return u.path }

// RcvBuf returns the receive buffer size the kernel granted.
func (u *Unix) RcvBuf() int { return u.rcvbuf }

// HoldBatches makes every later Read that returns datagrams keep the
// listener busy until Release, so that Quiet is false while a batch read
// from the queue is still being processed. Call it before the first Read.
func (u *Unix) HoldBatches() { u.rd.hold = true }

// Release ends the hold of the last Read (see HoldBatches).
func (u *Unix) Release() { u.rd.release() }

// Quiet reports that no datagram waits in the receive queue and no held
// batch is being processed: every beat sent before the call has been
// handed on.
func (u *Unix) Quiet() bool { return u.rd.quiet() }

// Settled reports that every datagram that reached the socket before since
// (a Now reading) has been read and handed on (released, with
// HoldBatches): a receive that began at or after since found less than a
// full batch queued and its batch has been released, or the listener is
// Quiet. Unlike Quiet it holds under a steady stream of datagrams, which
// keeps the queue from ever being empty: datagrams that arrived after since
// do not matter.
func (u *Unix) Settled(since int64) bool { return u.rd.settled(since) }

// Queued reports whether a datagram is waiting to be read.
func (u *Unix) Queued() bool { return u.rd.queued() }

// Pace makes the reads coalesce at low rates: After pauses up to interval
// after a read that emptied the socket, and a datagram arriving meanwhile
// wakes nobody (Pacer); capacity is how many datagrams the queue holds
// (UnixQueueCapacity). interval 0 keeps a read per readiness. Call it
// before the first Read.
func (u *Unix) Pace(interval time.Duration, capacity int) error {
	p, err := NewPacer(interval, capacity)
	if err != nil {
		return err
	}
	return u.rd.startPacing(p, u.conn.Close)
}

// After is told by the receiving goroutine that a Read returned n
// datagrams, already handed on; it may pause (Pace).
func (u *Unix) After(n int) { u.rd.pace.After(n) }

// Kick ends a pause of the receiving goroutine at once (Pace).
func (u *Unix) Kick() { u.rd.pace.Kick() }

// Read blocks until at least one datagram arrives and fills b, returning
// how many datagrams it holds. It returns net.ErrClosed after Close.
func (u *Unix) Read(b *Batch) (int, error) { return u.rd.read(b) }

// Stop closes the socket (a blocked Read returns net.ErrClosed) and keeps
// the socket file; Close does both. Stop is idempotent.
func (u *Unix) Stop() error {
	if u.stopped {
		return nil
	}
	u.stopped = true
	return u.rd.shutdown(u.conn.Close)
}

// Close closes the socket and removes the socket file if it is still the
// inode we bound (another observer may have replaced it). The change time
// is compared too, because a file system may hand a freed inode number to
// the replacement socket.
func (u *Unix) Close() error {
	err := u.Stop()
	if u.inherited {
		return err
	}
	var st unix.Stat_t
	if unix.Lstat(u.path, &st) == nil && uint64(st.Dev) == u.dev && uint64(st.Ino) == u.ino && st.Ctim == u.ctime {
		if rerr := os.Remove(u.path); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

// unixQlenPath holds the kernel's limit of queued datagrams per Unix
// datagram socket (per network namespace).
const unixQlenPath = "/proc/sys/net/unix/max_dgram_qlen"

// UnixQueueCapacity is how many datagrams a Unix datagram socket queues
// before senders get EAGAIN: net.unix.max_dgram_qlen + 1 (docs/deploy.md),
// read now; 0 when unknown (not Linux, or /proc unreadable).
func UnixQueueCapacity() int {
	raw, err := os.ReadFile(unixQlenPath)
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || n < 0 {
		return 0
	}
	return n + 1
}
