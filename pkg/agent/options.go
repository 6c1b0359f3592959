package agent

import (
	"fmt"

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
