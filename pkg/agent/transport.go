package agent

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// dialer opens a new non-blocking, close-on-exec datagram socket connected
// to the observer and returns its descriptor.
type dialer func() (int, error)

// newSocket creates a non-blocking, close-on-exec datagram socket. The fork
// lock keeps a concurrent fork/exec from inheriting the descriptor before
// FD_CLOEXEC is set (SOCK_CLOEXEC is not portable).
func newSocket(domain int) (int, error) {
	syscall.ForkLock.RLock()
	fd, err := unix.Socket(domain, unix.SOCK_DGRAM, 0)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, fmt.Errorf("create socket: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("set socket non-blocking: %w", err)
	}
	return fd, nil
}

// unixDialer connects an unbound Unix datagram socket to path.
func unixDialer(path string) dialer {
	sa := &unix.SockaddrUnix{Name: path}
	return func() (int, error) {
		fd, err := newSocket(unix.AF_UNIX)
		if err != nil {
			return -1, err
		}
		if err := unix.Connect(fd, sa); err != nil {
			unix.Close(fd)
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ECONNREFUSED) {
				return -1, fmt.Errorf("connect to observer socket %q: %w: %w", path, ErrNoObserver, err)
			}
			if errors.Is(err, unix.EINVAL) && len(path) >= 104 {
				return -1, fmt.Errorf("connect to observer socket %q: path is %d bytes, too long for a Unix socket address: %w", path, len(path), err)
			}
			return -1, fmt.Errorf("connect to observer socket %q: %w", path, err)
		}
		return fd, nil
	}
}

// udpSockaddr resolves host:port to a socket address and its family.
func udpSockaddr(addr string) (unix.Sockaddr, int, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, 0, fmt.Errorf("resolve observer address %q: %w", addr, err)
	}
	if ua.Port == 0 {
		return nil, 0, fmt.Errorf("observer address %q: %w: port 0", addr, ErrInvalidOptions)
	}
	if ip4 := ua.IP.To4(); ip4 != nil {
		sa := &unix.SockaddrInet4{Port: ua.Port}
		copy(sa.Addr[:], ip4)
		return sa, unix.AF_INET, nil
	}
	sa := &unix.SockaddrInet6{Port: ua.Port}
	copy(sa.Addr[:], ua.IP.To16())
	if ua.Zone != "" {
		ifi, err := net.InterfaceByName(ua.Zone)
		if err != nil {
			return nil, 0, fmt.Errorf("observer address %q: zone: %w", addr, err)
		}
		sa.ZoneId = uint32(ifi.Index)
	}
	return sa, unix.AF_INET6, nil
}

// udpDialer connects a UDP socket (the kernel picks an ephemeral local port)
// to sa.
func udpDialer(addr string, sa unix.Sockaddr, family int) dialer {
	return func() (int, error) {
		fd, err := newSocket(family)
		if err != nil {
			return -1, err
		}
		if err := unix.Connect(fd, sa); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("connect UDP socket to observer %s: %w", addr, err)
		}
		return fd, nil
	}
}
