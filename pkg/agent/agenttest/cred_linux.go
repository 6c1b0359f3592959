package agenttest

import (
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

const credSupported = true

func enableCred(c *net.UnixConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	}); err != nil {
		return err
	}
	return serr
}

func forceReadBuffer(c net.PacketConn, n int) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return errors.New("no raw connection")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
	}); err != nil {
		return err
	}
	return serr
}

func parseCred(oob []byte) (pid int32, uid uint32, ok bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, 0, false
	}
	for i := range msgs {
		if c, err := unix.ParseUnixCredentials(&msgs[i]); err == nil {
			return c.Pid, c.Uid, true
		}
	}
	return 0, 0, false
}
