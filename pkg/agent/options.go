package agent

import "fmt"

// Options describe the transport an Agent connects over. Exactly one of
// SocketPath and UDPAddr must be set.
type Options struct {
	// SocketPath is the observer's Unix datagram socket.
	SocketPath string
	// UDPAddr is the observer's UDP listener, host:port.
	UDPAddr string
	// ReconnectAfter: see Agent.SetReconnectAfter. 0 disables reconnecting.
	ReconnectAfter int
}

func (o *Options) validate() error {
	switch {
	case o.SocketPath == "" && o.UDPAddr == "":
		return fmt.Errorf("%w: no transport: set a socket path or a UDP address", ErrInvalidOptions)
	case o.SocketPath != "" && o.UDPAddr != "":
		return fmt.Errorf("%w: a socket path and a UDP address are mutually exclusive", ErrInvalidOptions)
	case o.ReconnectAfter < 0:
		return fmt.Errorf("%w: negative ReconnectAfter %d", ErrInvalidOptions, o.ReconnectAfter)
	}
	return nil
}

// sealerFactory returns nil for plain UDP.
func (o *Options) sealerFactory() (sealerFactory, error) { return nil, nil }
