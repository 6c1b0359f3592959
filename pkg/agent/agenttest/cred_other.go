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

// discarder reads one datagram per call.
type discarder struct{ buf [512]byte }

func (r *Receiver) discardBatch() (int, error) {
	rd := r.conn.(interface{ Read([]byte) (int, error) })
	if _, err := rd.Read(r.discard.buf[:]); err != nil {
		return 0, err
	}
	return 1, nil
}
