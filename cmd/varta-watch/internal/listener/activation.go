package listener

import (
	"errors"
	"fmt"
	"os"
)

// OpenUnix returns the observer's Unix datagram socket. With no inherited
// descriptors it binds one (ListenUnix). With descriptors passed by the
// service manager (systemd socket activation, LISTEN_FDS) it takes the
// single inherited socket instead (InheritUnix); more than one is an
// error, because the observer has exactly one beat socket.
func OpenUnix(o UnixOptions, inherited []*os.File) (*Unix, error) {
	switch len(inherited) {
	case 0:
		return ListenUnix(o)
	case 1:
		return InheritUnix(inherited[0], o)
	}
	for _, f := range inherited {
		f.Close()
	}
	return nil, fmt.Errorf("socket activation passed %d descriptors (LISTEN_FDS=%d): varta-watch takes exactly one, the Unix datagram beat socket (one ListenDatagram= in the .socket unit)", len(inherited), len(inherited))
}

// Errors of InheritUnix; its errors wrap one of these.
var (
	ErrInheritedNotUnix  = errors.New("is not an AF_UNIX socket")
	ErrInheritedNotDgram = errors.New("is not a SOCK_DGRAM socket")
	ErrInheritedPath     = errors.New("is not bound to the configured --socket path")
)

// Inherited reports whether the socket came from the service manager; its
// file is then never removed by Close.
func (u *Unix) Inherited() bool { return u.inherited }
