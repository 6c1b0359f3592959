//go:build !linux

package agenttest

import (
	"errors"
	"net"
)

// Only Linux reports per-datagram credentials on a Unix socket.
const credSupported = false

func enableCred(*net.UnixConn) error { return nil }

func parseCred([]byte) (int32, uint32, bool) { return 0, 0, false }

func forceReadBuffer(net.PacketConn, int) error { return errors.New("not supported") }
