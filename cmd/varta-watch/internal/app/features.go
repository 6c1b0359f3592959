package app

import (
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/varta-go/varta/cmd/varta-watch/internal/metrics"
	"github.com/varta-go/varta/cmd/varta-watch/internal/observer"
	"github.com/varta-go/varta/cmd/varta-watch/internal/recovery"
	"github.com/varta-go/varta/pkg/audit"
)

// featureOptions fills the options of the optional subsystems (metrics,
// UDP, recovery, audit).
func featureOptions(c *cli.Context, o *observer.Options) error {
	if err := recoveryOptions(c, o); err != nil {
		return err
	}
	if err := auditOptions(c, o); err != nil {
		return err
	}
	if err := promOptions(c, o); err != nil {
		return err
	}
	return udpOptions(c, o)
}

func promOptions(c *cli.Context, o *observer.Options) error {
	addr, token, webCfg := c.String("prom-addr"), c.String("prom-token-file"), c.String("web-config-file")
	switch {
	case addr == "" && (token != "" || webCfg != ""):
		return fmt.Errorf("--prom-token-file and --web-config-file require --prom-addr")
	case addr != "" && token == "" && webCfg == "":
		return fmt.Errorf("--prom-addr requires --prom-token-file (or a --web-config-file that authenticates clients)")
	}
	o.PromPerPid = c.Bool("prom-per-pid")
	if addr == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("--prom-addr %q: must be HOST:PORT", addr)
	}
	rate, err := flagPromRate.get(c)
	if err != nil {
		return err
	}
	burst, err := flagPromBurst.get(c)
	if err != nil {
		return err
	}
	// 0 in either turns the per-client limiter off (metrics.ServerOptions).
	maxConns, err := flagPromMaxConns.get(c)
	if err != nil {
		return err
	}
	o.Prom = &metrics.ServerOptions{Addr: addr, TokenFile: token, WebConfigFile: webCfg, RateLimitPerSec: float64(rate), RateLimitBurst: int(burst), MaxConnections: int(maxConns)}
	return nil
}

func udpOptions(c *cli.Context, o *observer.Options) error {
	keyFlags := []string{"key-file", "accepted-key-file", "master-key-file", "udp-bind-addr",
		"i-accept-plaintext-udp", "i-accept-secure-udp-non-loopback",
		"secure-udp-i-accept-recovery-on-unauthenticated-transport",
		"plaintext-udp-i-accept-recovery-on-unauthenticated-transport"}
	port, err := flagUDPPort.get(c)
	if err != nil {
		return err
	}
	if port == 0 {
		for _, f := range keyFlags {
			if c.IsSet(f) {
				return fmt.Errorf("--%s requires --udp-port", f)
			}
		}
		return nil
	}
	uo := &observer.UDPOptions{
		KeyFile:         c.String("key-file"),
		AcceptedKeyFile: c.String("accepted-key-file"),
		MasterKeyFile:   c.String("master-key-file"),
	}
	if uo.AcceptedKeyFile != "" && uo.KeyFile == "" {
		return fmt.Errorf("--accepted-key-file requires --key-file (the primary key)")
	}
	recovery := o.Recovery != nil || o.RecoveryExecFile != ""
	host := c.String("udp-bind-addr")
	if uo.Secure() {
		if c.Bool("i-accept-plaintext-udp") || c.Bool("plaintext-udp-i-accept-recovery-on-unauthenticated-transport") {
			return fmt.Errorf("--i-accept-plaintext-udp and --plaintext-udp-i-accept-recovery-on-unauthenticated-transport do not apply to the secure UDP listener (a key file is given)")
		}
		if host == "" {
			host = "127.0.0.1"
		}
		if !isLoopbackHost(host) && !c.Bool("i-accept-secure-udp-non-loopback") {
			return fmt.Errorf("--udp-bind-addr %s is not a loopback address: secure UDP needs --i-accept-secure-udp-non-loopback", host)
		}
		uo.AcceptRecovery = c.Bool("secure-udp-i-accept-recovery-on-unauthenticated-transport")
		if recovery && !uo.AcceptRecovery {
			return fmt.Errorf("recovery is configured together with the secure UDP listener: add --secure-udp-i-accept-recovery-on-unauthenticated-transport to let its beats trigger recovery")
		}
	} else {
		if !c.Bool("i-accept-plaintext-udp") {
			return fmt.Errorf("--udp-port without a key file is a plain, unauthenticated UDP listener: it needs --i-accept-plaintext-udp")
		}
		if c.Bool("secure-udp-i-accept-recovery-on-unauthenticated-transport") || c.Bool("i-accept-secure-udp-non-loopback") {
			return fmt.Errorf("--secure-udp-* flags need a key file (--key-file or --master-key-file)")
		}
		if host == "" {
			host = "0.0.0.0"
		}
		uo.AcceptRecovery = c.Bool("plaintext-udp-i-accept-recovery-on-unauthenticated-transport")
		if recovery && !uo.AcceptRecovery {
			return fmt.Errorf("recovery is configured together with the plain UDP listener: add --plaintext-udp-i-accept-recovery-on-unauthenticated-transport to let its beats trigger recovery")
		}
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("--udp-bind-addr %q: must be an IP address", host)
	}
	uo.Addr = netip.AddrPortFrom(ip, uint16(port)).String()
	o.UDP = uo
	return nil
}

func isLoopbackHost(h string) bool {
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsLoopback()
}

func recoveryOptions(c *cli.Context, o *observer.Options) error {
	inline, file := c.String("recovery-exec"), c.String("recovery-exec-file")
	if c.IsSet("recovery-exec") && c.IsSet("recovery-exec-file") {
		return fmt.Errorf("--recovery-exec and --recovery-exec-file are mutually exclusive")
	}
	// A policy file may give recovery programs of its own (docs/services.md):
	// the recovery flags then apply to them.
	configured := c.IsSet("recovery-exec") || c.IsSet("recovery-exec-file") || c.String("policy-file") != ""
	if !configured {
		for _, f := range []string{"recovery-capture-stdio", "recovery-capture-bytes", "recovery-timeout-ms",
			"recovery-env", "recovery-inherit-env", "recovery-debounce-ms"} {
			if c.IsSet(f) {
				return fmt.Errorf("--%s requires a recovery command (--recovery-exec, --recovery-exec-file or --policy-file)", f)
			}
		}
		return nil
	}
	ro := &recovery.Options{}
	if c.IsSet("recovery-exec") {
		prog, args, err := recovery.ParseCommand(inline)
		if err != nil {
			return fmt.Errorf("--recovery-exec: %w", err)
		}
		ro.Program, ro.Args, ro.Source = prog, args, audit.SourceInline
	} else if c.IsSet("recovery-exec-file") {
		if file == "" {
			return fmt.Errorf("--recovery-exec-file: must not be empty")
		}
		o.RecoveryExecFile = file
	}
	deb, err := flagRecoveryDebounce.millis(c)
	if err != nil {
		return err
	}
	// 0 turns the debounce window off.
	ro.Debounce, ro.DebounceOff = deb, deb == 0
	if ro.Timeout, err = flagRecoveryTimeout.millis(c); err != nil {
		return err
	}
	env := c.StringSlice("recovery-env")
	if err := recovery.ValidateEnv(env); err != nil {
		return fmt.Errorf("--recovery-env: %w", err)
	}
	ro.Env = env
	ro.InheritEnv = c.Bool("recovery-inherit-env")
	if ro.InheritEnv {
		ro.BaseEnv = os.Environ()
	}
	ro.CaptureStdio = c.Bool("recovery-capture-stdio")
	cb, err := flagRecoveryCaptureBytes.get(c)
	if err != nil {
		return err
	}
	ro.CaptureBytes = int(cb)
	ro.AllowCrossNamespace = o.AllowCrossNamespace
	ro.OutstandingCapacity = o.TrackerCapacity
	o.Recovery = ro
	return nil
}

func auditOptions(c *cli.Context, o *observer.Options) error {
	p := c.String("recovery-audit-file")
	if p == "" {
		for _, f := range []string{"recovery-audit-max-bytes", "recovery-audit-sync-every", "audit-fsync-budget-ms", "audit-sync-interval-ms"} {
			if c.IsSet(f) {
				return fmt.Errorf("--%s requires --recovery-audit-file", f)
			}
		}
		return nil
	}
	ao := &audit.Options{Path: p, DaemonPid: uint32(os.Getpid()), GroupReadable: c.Bool("files-group-readable")}
	mb, err := flagAuditMaxBytes.get(c)
	if err != nil {
		return err
	}
	ao.MaxBytes = mb
	se, err := flagAuditSyncEvery.get(c)
	if err != nil {
		return err
	}
	ao.SyncEvery = int(se)
	if ao.FsyncBudget, err = flagAuditFsyncBudget.millis(c); err != nil {
		return err
	}
	if ao.SyncInterval, err = flagAuditSyncInterval.millis(c); err != nil {
		return err
	}
	o.Audit = ao
	return nil
}
