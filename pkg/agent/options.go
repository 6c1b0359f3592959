package agent

import (
	"fmt"
	"os"
	"time"

	"github.com/varta-go/varta/pkg/vlp/secure"
)

// Options describe the transport an Agent connects over. Exactly one of
// SocketPath and UDPAddr must be set; SharedKey or MasterKey (not both)
// turn UDP into secure UDP.
type Options struct {
	// SocketPath is the observer's Unix datagram socket.
	SocketPath string
	// UDPAddr is the observer's UDP listener, host:port.
	UDPAddr string
	// SharedKey selects secure UDP with 60-byte shared-key frames.
	SharedKey *secure.Key
	// MasterKey selects secure UDP with 64-byte master-key frames sealed
	// under the key derived for this process's pid.
	MasterKey *secure.Key
	// ReconnectAfter: see Agent.SetReconnectAfter. 0 disables reconnecting.
	ReconnectAfter int
	// Lazy lets Connect succeed when no observer listens on SocketPath yet
	// (services usually start before, or without, the observer). The
	// Agent then starts unconnected: each Beat or Terminal while
	// unconnected is a drop with reason NoObserver (counted in
	// Stats.Dropped), and at most once per LazyRetry one of them tries to
	// connect first (counted in Stats.Reconnects or ReconnectFailures).
	// Connected reports the state. Other Connect errors are still returned.
	Lazy bool
	// LazyRetry is the minimum time between two connection attempts of an
	// unconnected lazy Agent; 0 means one second.
	LazyRetry time.Duration
}

// Default observer socket, shared by varta-beat and varta-watch's
// documentation.
const (
	// DefaultSocketPath is the observer socket when nothing else is set.
	DefaultSocketPath = "/run/varta/varta.sock"
	// SocketEnv names the environment variable that overrides it.
	SocketEnv = "VARTA_SOCKET"
)

// DefaultSocket returns $VARTA_SOCKET if it is set and not empty, else
// DefaultSocketPath: the socket an agent uses when it is not told.
func DefaultSocket() string {
	if p := os.Getenv(SocketEnv); p != "" {
		return p
	}
	return DefaultSocketPath
}

func (o *Options) validate() error {
	switch {
	case o.SocketPath == "" && o.UDPAddr == "":
		return fmt.Errorf("%w: no transport: set a socket path or a UDP address", ErrInvalidOptions)
	case o.SocketPath != "" && o.UDPAddr != "":
		return fmt.Errorf("%w: a socket path and a UDP address are mutually exclusive", ErrInvalidOptions)
	case o.SharedKey != nil && o.MasterKey != nil:
		return fmt.Errorf("%w: a shared key and a master key are mutually exclusive", ErrInvalidOptions)
	case o.SocketPath != "" && (o.SharedKey != nil || o.MasterKey != nil):
		return fmt.Errorf("%w: keys apply to UDP only (the Unix socket is kernel-attested)", ErrInvalidOptions)
	case o.ReconnectAfter < 0:
		return fmt.Errorf("%w: negative ReconnectAfter %d", ErrInvalidOptions, o.ReconnectAfter)
	case o.LazyRetry < 0:
		return fmt.Errorf("%w: negative LazyRetry %v", ErrInvalidOptions, o.LazyRetry)
	}
	return nil
}

// sealerFactory returns how to build the secure sealer for a pid, or nil
// for plain UDP. The keys are copied: later changes by the caller do not
// affect the Agent.
func (o *Options) sealerFactory() sealerFactory {
	switch {
	case o.SharedKey != nil:
		k := *o.SharedKey
		return func(uint32) (*secure.Sealer, error) { return secure.NewSharedSealer(k) }
	case o.MasterKey != nil:
		m := *o.MasterKey
		return func(pid uint32) (*secure.Sealer, error) { return secure.NewMasterSealer(m, pid) }
	}
	return nil
}
