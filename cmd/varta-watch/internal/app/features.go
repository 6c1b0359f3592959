package app

import (
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

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
	return nil
}

func recoveryOptions(c *cli.Context, o *observer.Options) error {
	inline, file := c.String("recovery-exec"), c.String("recovery-exec-file")
	if c.IsSet("recovery-exec") && c.IsSet("recovery-exec-file") {
		return fmt.Errorf("--recovery-exec and --recovery-exec-file are mutually exclusive")
	}
	configured := c.IsSet("recovery-exec") || c.IsSet("recovery-exec-file")
	if !configured {
		for _, f := range []string{"recovery-capture-stdio", "recovery-capture-bytes", "recovery-timeout-ms",
			"recovery-env", "recovery-inherit-env", "recovery-debounce-ms"} {
			if c.IsSet(f) {
				return fmt.Errorf("--%s requires a recovery command (--recovery-exec or --recovery-exec-file)", f)
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
	} else {
		if file == "" {
			return fmt.Errorf("--recovery-exec-file: must not be empty")
		}
		o.RecoveryExecFile = file
	}
	deb, err := bounds(c, "recovery-debounce-ms", 0, 86_400_000)
	if err != nil {
		return err
	}
	ro.Debounce = time.Duration(deb) * time.Millisecond
	if deb == 0 {
		// Zero means "no debounce window" to an operator; the runner
		// treats zero as "default", so use the smallest positive window.
		ro.Debounce = time.Nanosecond
	}
	if c.IsSet("recovery-timeout-ms") {
		to, err := bounds(c, "recovery-timeout-ms", 100, 86_400_000)
		if err != nil {
			return err
		}
		ro.Timeout = time.Duration(to) * time.Millisecond
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
	cb, err := bounds(c, "recovery-capture-bytes", 1, recovery.MaxCaptureBytes)
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
	ao := &audit.Options{Path: p, DaemonPid: uint32(os.Getpid())}
	mb, err := bounds(c, "recovery-audit-max-bytes", 0, maxInt64)
	if err != nil {
		return err
	}
	if mb != 0 && mb < 4096 {
		return fmt.Errorf("--recovery-audit-max-bytes %d: must be 0 or >= 4096", mb)
	}
	ao.MaxBytes = mb
	se, err := bounds(c, "recovery-audit-sync-every", 1, 1<<31-1)
	if err != nil {
		return err
	}
	ao.SyncEvery = int(se)
	fb, err := bounds(c, "audit-fsync-budget-ms", 1, 60_000)
	if err != nil {
		return err
	}
	ao.FsyncBudget = time.Duration(fb) * time.Millisecond
	si, err := bounds(c, "audit-sync-interval-ms", 0, 3_600_000)
	if err != nil {
		return err
	}
	ao.SyncInterval = time.Duration(si) * time.Millisecond
	o.Audit = ao
	return nil
}
