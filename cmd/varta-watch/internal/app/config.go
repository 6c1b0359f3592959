package app

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/urfave/cli/v2"

	"github.com/varta-go/varta/cmd/varta-watch/internal/clock"
	"github.com/varta-go/varta/cmd/varta-watch/internal/events"
	"github.com/varta-go/varta/cmd/varta-watch/internal/ingest"
	"github.com/varta-go/varta/cmd/varta-watch/internal/lifecycle"
	"github.com/varta-go/varta/cmd/varta-watch/internal/observer"
	"github.com/varta-go/varta/cmd/varta-watch/internal/policy"
	"github.com/varta-go/varta/cmd/varta-watch/internal/tracker"
	"github.com/varta-go/varta/pkg/exitcode"
)

// configError is a configuration error: exit 2 with the message.
func configError(format string, args ...any) error {
	return cli.Exit(fmt.Sprintf(format, args...), exitcode.Usage)
}

// ParseSocketMode accepts 600, 0600 and 0o600.
func ParseSocketMode(s string) (os.FileMode, error) {
	t := strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0O")
	v, err := strconv.ParseUint(t, 8, 32)
	if err != nil || v > 0o777 || t == "" {
		return 0, fmt.Errorf("--socket-mode %q: must be octal permission bits such as 600, 0600 or 0o600", s)
	}
	return os.FileMode(v), nil
}

func parseIDs(flag string, vals []string) ([]uint32, error) {
	var out []uint32
	for _, v := range vals {
		id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("--%s %q: must be a numeric id", flag, v)
		}
		out = append(out, uint32(id))
	}
	return out, nil
}

// drainInterval reads --drain-interval-ms: within its flag bounds and at
// most a quarter of the threshold (observer.MaxDrainInterval).
func drainInterval(c *cli.Context, threshold time.Duration) (time.Duration, error) {
	d, err := flagDrainInterval.millis(c)
	if err != nil {
		return 0, err
	}
	if hi := observer.MaxDrainInterval(threshold); d > hi {
		return 0, fmt.Errorf("--drain-interval-ms %d: must be at most a quarter of --threshold-ms %d (%d)", d.Milliseconds(), threshold.Milliseconds(), hi.Milliseconds())
	}
	return d, nil
}

// options turns the parsed flags (and the environment the daemon got from
// its service manager) into observer.Options. Every error is a
// configuration error.
func options(c *cli.Context, environ func(string) string) (observer.Options, error) {
	var o observer.Options
	for name, msg := range removed {
		if c.IsSet(name) {
			return o, fmt.Errorf("%s", msg)
		}
	}
	var err error
	o.Unix.Path = c.String("socket")
	if o.Unix.Path == "" {
		return o, fmt.Errorf("--socket: must not be empty")
	}
	if o.Unix.Mode, err = ParseSocketMode(c.String("socket-mode")); err != nil {
		return o, err
	}
	if err := socketGroup(c, &o.Unix); err != nil {
		return o, err
	}
	if o.AllowUIDs, err = parseIDs("allow-uid", c.StringSlice("allow-uid")); err != nil {
		return o, err
	}
	if o.AllowGIDs, err = parseIDs("allow-gid", c.StringSlice("allow-gid")); err != nil {
		return o, err
	}
	rcv, err := flagUDSRcvBuf.get(c)
	if err != nil {
		return o, err
	}
	o.Unix.RcvBuf = int(rcv)

	if o.Threshold, err = flagThreshold.millis(c); err != nil {
		return o, err
	}
	if o.DrainInterval, err = drainInterval(c, o.Threshold); err != nil {
		return o, err
	}
	capacity, err := flagTrackerCapacity.get(c)
	if err != nil {
		return o, err
	}
	o.TrackerCapacity = int(capacity)
	if o.EvictionPolicy, err = tracker.ParsePolicy(c.String("tracker-eviction-policy")); err != nil {
		return o, fmt.Errorf("--%w", err)
	}
	if o.ClockSource, err = clock.ParseSource(c.String("clock-source")); err != nil {
		return o, fmt.Errorf("--%w", err)
	}
	rate, err := flagMaxBeatRate.get(c)
	if err != nil {
		return o, err
	}
	o.MaxBeatRate = int(rate)
	o.GlobalBeatRate = ingest.DefaultGlobalRate(o.TrackerCapacity)
	if c.IsSet("global-beat-rate") {
		v, err := flagGlobalBeatRate.get(c)
		if err != nil {
			return o, err
		}
		o.GlobalBeatRate = float64(v)
	}
	o.GlobalBeatBurst = 2 * o.GlobalBeatRate
	if c.IsSet("global-beat-burst") {
		v, err := flagGlobalBeatBurst.get(c)
		if err != nil {
			return o, err
		}
		o.GlobalBeatBurst = float64(v)
		if v == 0 { // 0 = off, like --global-beat-rate 0
			o.GlobalBeatRate = 0
		}
	}
	o.AllowCrossNamespace = c.Bool("allow-cross-namespace-agents")
	o.StrictNamespace = c.Bool("strict-namespace-check")
	if o.AllowCrossNamespace && o.StrictNamespace {
		return o, fmt.Errorf("--allow-cross-namespace-agents and --strict-namespace-check contradict each other")
	}

	if p := c.String("export-file"); p != "" {
		eo := &events.Options{Path: p, GroupReadable: c.Bool("files-group-readable")}
		mb, err := flagExportMaxBytes.get(c)
		if err != nil {
			return o, err
		}
		if mb != 0 && p == events.StdoutPath {
			return o, fmt.Errorf("--export-file-max-bytes %d with --export-file -: standard output cannot be rotated", mb)
		}
		eo.MaxBytes = mb
		se, err := flagExportSyncEvery.get(c)
		if err != nil {
			return o, err
		}
		eo.SyncEvery = int(se)
		if eo.Kinds, err = events.ParseKinds(c.String("export-kinds")); err != nil {
			return o, err
		}
		if eo.Format, err = events.ParseFormat(c.String("export-format")); err != nil {
			return o, fmt.Errorf("--%w", err)
		}
		// A person watching "--export-file -" on a terminal gets aligned
		// columns and wall-clock times; a pipe or a file gets the file format.
		eo.Terminal = p == events.StdoutPath && isTerminal(os.Stdout) && eo.Format == events.FormatTSV
		o.Export = eo
	} else if c.IsSet("export-file-max-bytes") || c.IsSet("export-file-sync-every") || c.IsSet("export-kinds") || c.IsSet("export-format") {
		return o, fmt.Errorf("--export-file-max-bytes, --export-file-sync-every, --export-kinds and --export-format require --export-file")
	}
	if err := serviceOptions(c, &o); err != nil {
		return o, err
	}

	if err := controlOptions(c, &o); err != nil {
		return o, err
	}
	if err := lifecycleOptions(c, environ, &o); err != nil {
		return o, err
	}
	if err := featureOptions(c, &o); err != nil {
		return o, err
	}
	if c.Bool("files-group-readable") && o.Export == nil && o.Audit == nil {
		return o, fmt.Errorf("--files-group-readable requires --export-file or --recovery-audit-file")
	}
	return o, nil
}

func controlOptions(c *cli.Context, o *observer.Options) error {
	p := c.String("control-socket")
	if p == controlOff {
		// --state-dir also keeps the tracked agents and replay marks.
		for _, f := range []string{"control-socket-mode", "control-allow-uid"} {
			if c.IsSet(f) {
				return fmt.Errorf("--%s has no effect with --control-socket off", f)
			}
		}
		return nil
	}
	if p == "" {
		p = filepath.Join(filepath.Dir(o.Unix.Path), ControlSocketName)
	}
	if p == o.Unix.Path {
		return fmt.Errorf("--control-socket %q: must differ from --socket", p)
	}
	mode, err := ParseSocketMode(c.String("control-socket-mode"))
	if err != nil {
		return fmt.Errorf("--control-socket-mode %q: must be octal permission bits such as 600, 0600 or 0o600", c.String("control-socket-mode"))
	}
	co := &observer.ControlOptions{Path: p, Mode: mode, StateDir: c.String("state-dir")}
	if co.AllowUIDs, err = parseIDs("control-allow-uid", c.StringSlice("control-allow-uid")); err != nil {
		return err
	}
	o.Control = co
	return nil
}

func lifecycleOptions(c *cli.Context, environ func(string) string, o *observer.Options) error {
	o.StateDir = c.String("state-dir")
	si, err := flagStateSaveInterval.get(c)
	if err != nil {
		return err
	}
	if o.StateDir == "" && c.IsSet("state-save-interval-ms") {
		return fmt.Errorf("--state-save-interval-ms requires --state-dir")
	}
	o.StateSaveInterval = time.Duration(si) * time.Millisecond
	o.HeartbeatFile = c.String("heartbeat-file")
	o.HWWatchdog = c.String("hw-watchdog")
	sa, err := flagShutdownAfter.get(c)
	if err != nil {
		return err
	}
	o.ShutdownAfter = time.Duration(sa) * time.Second
	if o.ShutdownGrace, err = flagShutdownGrace.millis(c); err != nil {
		return err
	}
	if c.IsSet(flagTestClockJump.name) {
		if o.ClockJumpThreshold, err = flagTestClockJump.millis(c); err != nil {
			return err
		}
	}

	o.NotifySocket = environ("NOTIFY_SOCKET")
	wd, err := lifecycle.ParseWatchdog(environ("WATCHDOG_USEC"), environ("WATCHDOG_PID"), os.Getpid())
	if err != nil {
		return err
	}
	o.WatchdogInterval = lifecycle.PingInterval(wd)
	if c.IsSet(flagSelfWatchdog.name) {
		sw, err := flagSelfWatchdog.get(c)
		if err != nil {
			return err
		}
		o.SelfWatchdog = time.Duration(sw) * time.Second
	} else if o.WatchdogInterval > 0 {
		o.SelfWatchdog = 4 * time.Second
	}
	switch f := c.String("log-format"); f {
	case "text", "json":
	default:
		return fmt.Errorf("--log-format %q: must be text or json", f)
	}
	return nil
}

// newLogger builds the daemon's logger for --log-format.
func newLogger(format string, w io.Writer) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(newTextHandler(w))
}

// checkRequired refuses a daemon start without --socket or --threshold-ms:
// a usage error naming the missing flags (one line and the --help hint on
// stderr, not the whole help).
func checkRequired(c *cli.Context) error {
	var missing []string
	for _, name := range []string{"socket", "threshold-ms"} {
		if !c.IsSet(name) {
			missing = append(missing, "--"+name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	// One line and the --help hint (exitcode.Report), not the whole help.
	return configError("required flag(s) %s not set", strings.Join(missing, ", "))
}

// runAction is the daemon's main: configuration errors exit 2, runtime
// failures exit 1.
func runAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return configError("unexpected argument %q", c.Args().First())
	}
	if err := checkRequired(c); err != nil {
		return err
	}
	o, err := options(c, os.Getenv)
	if err != nil {
		return configError("%v", err)
	}
	// Socket activation: take the beat socket from the service manager
	// (LISTEN_PID must name this process); the variables are removed so
	// that recovery children never see them.
	o.Activated = activation.Files(true)
	o.Logger = newLogger(c.String("log-format"), c.App.ErrWriter)
	o.Stdout = c.App.Writer
	if err := runDaemon(c.Context, o); err != nil {
		return cli.Exit(err.Error(), exitcode.Failure)
	}
	return nil
}

// serviceOptions reads the policy file (a bad one is a configuration
// error, exit 2) and the service flags.
func serviceOptions(c *cli.Context, o *observer.Options) error {
	if p := c.String("policy-file"); p != "" {
		pol, err := policy.Load(p)
		if err != nil {
			return err
		}
		o.PolicyFile, o.Policy = p, pol
	}
	ms, err := flagPromMaxServices.get(c)
	if err != nil {
		return err
	}
	o.PromMaxServices = int(ms)
	if o.RecoveryRetry, err = flagRecoveryRetry.millis(c); err != nil {
		return err
	}
	return nil
}
