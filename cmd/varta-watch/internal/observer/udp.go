package observer

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/listener"
	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/pkg/logthrottle"
	"github.com/varta-go/varta/pkg/vlp"
	"github.com/varta-go/varta/pkg/vlp/secure"
)

// UDPOptions configure the UDP listener. With any key file it is the
// secure listener (60/64-byte AEAD frames); without, the plain one.
type UDPOptions struct {
	Addr            string // IP:PORT
	KeyFile         string
	AcceptedKeyFile string
	MasterKeyFile   string
	// AcceptRecovery marks this listener's beats OperatorAttestedTransport
	// (eligible for recovery) instead of NetworkUnverified.
	AcceptRecovery bool
}

// Secure reports whether keys are configured.
func (u *UDPOptions) Secure() bool {
	return u.KeyFile != "" || u.AcceptedKeyFile != "" || u.MasterKeyFile != ""
}

// udpState is the running UDP listener.
type udpState struct {
	l      *listener.UDP
	opener *secure.Opener
	origin vlp.Origin
}

// startUDP loads the keys and binds the UDP listener. Key problems are
// runtime errors naming the file and the rule.
func (o *Observer) startUDP() error {
	uo := o.opts.UDP
	if uo == nil {
		return nil
	}
	st := &udpState{origin: vlp.OriginNetworkUnverified}
	if uo.AcceptRecovery {
		st.origin = vlp.OriginOperatorAttestedTransport
	}
	if uo.Secure() {
		var cfg secure.OpenerConfig
		if uo.KeyFile != "" {
			k, err := secure.ParseKeyFile(uo.KeyFile)
			if err != nil {
				return fmt.Errorf("--key-file: %w", err)
			}
			cfg.SharedKeys = append(cfg.SharedKeys, k)
		}
		if uo.AcceptedKeyFile != "" {
			ks, err := secure.ParseAcceptedKeysFile(uo.AcceptedKeyFile)
			if err != nil {
				return fmt.Errorf("--accepted-key-file: %w", err)
			}
			cfg.SharedKeys = append(cfg.SharedKeys, ks...)
		}
		if uo.MasterKeyFile != "" {
			k, err := secure.ParseKeyFile(uo.MasterKeyFile)
			if err != nil {
				return fmt.Errorf("--master-key-file: %w", err)
			}
			cfg.MasterKey = &k
		}
		op, err := secure.NewOpener(cfg)
		if err != nil {
			return fmt.Errorf("secure udp: %w", err)
		}
		st.opener = op
	}
	l, err := listener.ListenUDP(uo.Addr, o.opts.Unix.RcvBuf)
	if err != nil {
		return err
	}
	l.HoldBatches()
	st.l = l
	if err := l.Pace(o.opts.DrainInterval); err != nil {
		return err
	}
	o.udp = st
	o.closeFns = append(o.closeFns, func() { l.Close() })
	mode := "plain"
	if st.opener != nil {
		mode = "secure"
	}
	o.log.Info("udp listener bound", "addr", l.Addr().String(), "mode", mode, "origin", st.origin.String())
	if !listener.IsLoopback(uo.Addr) {
		o.log.Warn("udp listener is bound to a non-loopback address", "addr", uo.Addr)
	}
	return nil
}

// receiveUDP reads the UDP socket and hands each batch to ingest.
func (o *Observer) receiveUDP() {
	defer o.wg.Done()
	st := o.udp
	b := listener.NewBatch()
	errLog := logthrottle.Every(receiveErrorLogEvery)
	for {
		n, err := st.l.Read(b)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			o.pipe.ReceiveError(stats.TransportUDP, err, o.clk.Now())
			if errLog.AllowAt(time.Now()) {
				o.warn("receive on udp socket failed", append([]any{"err", err}, suppressedAttr(&errLog)...)...)
			}
			time.Sleep(time.Millisecond)
			continue
		}
		now, wall := o.clk.Now(), time.Now().UnixNano()
		if st.opener == nil {
			o.pipe.UDPBatch(b, n, now, wall)
		} else {
			o.pipe.SecureBatch(b, n, now, wall)
		}
		st.l.Release()
		o.tickIfDue()
		st.l.After(n)
	}
}
