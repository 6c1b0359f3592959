package listener

import (
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// InheritUnix takes over a Unix datagram socket created by the service
// manager. It checks that f is an AF_UNIX SOCK_DGRAM socket bound to
// o.Path (when o.Path is set), enables SO_PASSCRED (PassCredentials=yes
// in the unit does it already; beats queued before that carry no
// credentials and are refused as I/O errors) and applies o.RcvBuf.
//
// The socket file belongs to the service manager: its mode and group come
// from the .socket unit (SocketMode=, SocketGroup=), o.Mode is not
// applied, and Close never removes the file, so beats sent while the
// observer restarts wait in the kernel queue. f is consumed: it is closed
// on return (the listener keeps its own duplicate).
func InheritUnix(f *os.File, o UnixOptions) (*Unix, error) {
	defer f.Close()
	name := fmt.Sprintf("inherited descriptor %d (%s)", f.Fd(), f.Name())
	fd := int(f.Fd())
	domain, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		if errors.Is(err, unix.ENOTSOCK) {
			return nil, fmt.Errorf("%s %w (not a socket at all)", name, ErrInheritedNotUnix)
		}
		return nil, fmt.Errorf("%s: SO_DOMAIN: %w", name, err)
	}
	if domain != unix.AF_UNIX {
		return nil, fmt.Errorf("%s %w (address family %d)", name, ErrInheritedNotUnix, domain)
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return nil, fmt.Errorf("%s: SO_TYPE: %w", name, err)
	}
	if typ != unix.SOCK_DGRAM {
		return nil, fmt.Errorf("%s %w (socket type %d; use ListenDatagram= in the .socket unit)", name, ErrInheritedNotDgram, typ)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return nil, fmt.Errorf("%s: getsockname: %w", name, err)
	}
	bound := ""
	if ua, ok := sa.(*unix.SockaddrUnix); ok {
		bound = ua.Name
	}
	if o.Path != "" && bound != o.Path {
		return nil, fmt.Errorf("%s %w: bound to %q, --socket is %q", name, ErrInheritedPath, bound, o.Path)
	}
	if bound == "" || bound[0] == '@' {
		return nil, fmt.Errorf("%s %w: it has no file system path (%q)", name, ErrInheritedPath, bound)
	}

	u := &Unix{path: bound, inherited: true}
	if err := setupUnixSocket(fd, o.RcvBuf, &u.rcvbuf); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	pc, err := net.FilePacketConn(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	conn, ok := pc.(*net.UnixConn)
	if !ok {
		pc.Close()
		return nil, fmt.Errorf("%s %w", name, ErrInheritedNotUnix)
	}
	raw, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	u.conn, u.raw = conn, raw
	u.rd.init(raw, true)
	return u, nil
}
