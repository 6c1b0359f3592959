package app

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/varta-go/varta/cmd/varta-watch/internal/listener"
	"github.com/varta-go/varta/cmd/varta-watch/internal/recovery"
	"github.com/varta-go/varta/cmd/varta-watch/internal/tracker"
)

func env(name string) []string {
	return []string{"VARTA_WATCH_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))}
}

const (
	catSocket   = "Unix socket"
	catTracker  = "Tracking and stall detection"
	catExport   = "Events file"
	catMetrics  = "Prometheus endpoint"
	catUDP      = "UDP listeners"
	catRecovery = "Recovery"
	catAudit    = "Audit log"
	catLife     = "Lifecycle"
	catControl  = "Control socket"
)

func str(name, usage, cat string, def string, required bool) *cli.StringFlag {
	return &cli.StringFlag{Name: name, Usage: usage, Category: cat, Value: def, Required: required, EnvVars: env(name)}
}

func boolean(name, usage, cat string, def bool) *cli.BoolFlag {
	return &cli.BoolFlag{Name: name, Usage: usage, Category: cat, Value: def, EnvVars: env(name)}
}

func list(name, usage, cat string) *cli.StringSliceFlag {
	return &cli.StringSliceFlag{Name: name, Usage: usage, Category: cat, EnvVars: env(name)}
}

// maxInt64 is the upper bound of a flag without one.
const maxInt64 = int64(^uint64(0) >> 1)

// intFlag is an integer flag together with its bounds: flags() lists its
// cli flag and the configuration reads it with get, which refuses a value
// out of bounds with an error naming the flag and the rule. A flag's range
// is written here once, beside its name, usage and default.
type intFlag struct {
	name, usage, cat string
	def              int64
	// defText is the default shown in help for a default computed from
	// other settings (def is then a sentinel, -1) or a required flag.
	defText string
	min     int64
	max     int64 // maxInt64: no upper bound
	// orZero also allows 0 below min (0 = off, never).
	orZero bool
	// hidden flags are for tests: not in help, the man page or the
	// environment.
	hidden bool
}

// cli returns a new cli flag for one App (a cli flag records its parse).
func (f *intFlag) cli() *cli.Int64Flag {
	if f.hidden {
		return &cli.Int64Flag{Name: f.name, Value: f.def, Hidden: true}
	}
	return &cli.Int64Flag{Name: f.name, Usage: f.usage, Category: f.cat, Value: f.def, DefaultText: f.defText, EnvVars: env(f.name)}
}

// check refuses v outside the bounds, naming the flag and the rule.
func (f *intFlag) check(v int64) error {
	switch {
	case f.orZero && v == 0:
		return nil
	case v >= f.min && v <= f.max:
		return nil
	case f.orZero && f.max == maxInt64:
		return fmt.Errorf("--%s %d: must be 0 or >= %d", f.name, v, f.min)
	case f.orZero:
		return fmt.Errorf("--%s %d: must be 0 or between %d and %d", f.name, v, f.min, f.max)
	case f.max == maxInt64:
		return fmt.Errorf("--%s %d: must be >= %d", f.name, v, f.min)
	}
	return fmt.Errorf("--%s %d: must be between %d and %d", f.name, v, f.min, f.max)
}

// get returns the flag's value (its default when not set), checked.
func (f *intFlag) get(c *cli.Context) (int64, error) {
	v := c.Int64(f.name)
	return v, f.check(v)
}

// millis returns the flag's value as milliseconds, checked.
func (f *intFlag) millis(c *cli.Context) (time.Duration, error) {
	v, err := f.get(c)
	return time.Duration(v) * time.Millisecond, err
}

// The integer flags, by category, each with its bounds.
var (
	// Unix socket.
	flagUDSRcvBuf = &intFlag{name: "uds-rcvbuf-bytes", usage: "SO_RCVBUF request in `BYTES` (0 = kernel default)", cat: catSocket,
		def: 1048576, min: 0, max: 1 << 30}
	// flagDrainInterval is also bounded by a quarter of --threshold-ms
	// (drainInterval).
	flagDrainInterval = &intFlag{name: "drain-interval-ms", usage: "at low beat rates read the sockets at most every `MS` milliseconds (and always before deciding a stall) instead of once per datagram; beats keep their kernel arrival times (0 = read every datagram at once; at most 1000 and a quarter of --threshold-ms)", cat: catSocket,
		def: 0, min: 0, max: listener.MaxDrainInterval.Milliseconds()}

	// Tracking.
	flagThreshold = &intFlag{name: "threshold-ms", usage: "an agent silent for `MS` milliseconds is stalled (>= 10)", cat: catTracker,
		defText: "required", min: 10, max: maxInt64 / int64(time.Millisecond)}
	flagTrackerCapacity = &intFlag{name: "tracker-capacity", usage: "maximum tracked agents (`N`, 1 ... 1048576)", cat: catTracker,
		def: 4096, min: tracker.MinCapacity, max: tracker.MaxCapacity}
	flagMaxBeatRate = &intFlag{name: "max-beat-rate", usage: "per-pid accepted frames per second (`N`; 0 = off)", cat: catTracker,
		def: 100, min: 0, max: 1_000_000}
	flagGlobalBeatRate = &intFlag{name: "global-beat-rate", usage: "global frames per second, rejected frames included (`N`; 0 = off)", cat: catTracker,
		def: -1, defText: "max(5000, 2 x --tracker-capacity)", min: 0, max: 100_000_000}
	flagGlobalBeatBurst = &intFlag{name: "global-beat-burst", usage: "global token bucket size (`N`; 0 = off)", cat: catTracker,
		def: -1, defText: "2 x --global-beat-rate", min: 0, max: 200_000_000}

	// Events file.
	flagExportMaxBytes = &intFlag{name: "export-file-max-bytes", usage: "rotate the events file at `N` bytes (>= 4096; 0 = never), keeping 5 generations", cat: catExport,
		def: 0, min: 4096, max: maxInt64, orZero: true}
	flagExportSyncEvery = &intFlag{name: "export-file-sync-every", usage: "fdatasync the events file every `N` lines (0 = only at rotation and shutdown)", cat: catExport,
		def: 0, min: 0, max: 1<<31 - 1}

	// Metrics.
	flagPromRate = &intFlag{name: "prom-rate-limit-per-sec", usage: "per-client-IP scrape rate (`N`/s; 0 = off)", cat: catMetrics,
		def: 5, min: 0, max: 1_000_000}
	flagPromBurst = &intFlag{name: "prom-rate-limit-burst", usage: "per-client-IP scrape burst (`N`; 0 = off)", cat: catMetrics,
		def: 10, min: 0, max: 1_000_000}
	flagPromMaxConns = &intFlag{name: "prom-max-connections", usage: "open connections to the metrics endpoint (`N`, 1-65536); at the limit the longest-idle one is closed", cat: catMetrics,
		def: 64, min: 1, max: 65536}
	flagPromMaxServices = &intFlag{name: "prom-max-services", usage: "export at most `N` distinct service label values; the rest count as service=\"other\"", cat: catMetrics,
		def: 1000, min: 1, max: 1_000_000}

	// UDP.
	flagUDPPort = &intFlag{name: "udp-port", usage: "also listen for beats on UDP `PORT` (0 = off)", cat: catUDP,
		def: 0, min: 0, max: 65535}

	// Recovery.
	flagRecoveryDebounce = &intFlag{name: "recovery-debounce-ms", usage: "do not recover the same process again within `MS`", cat: catRecovery,
		def: 1000, min: 0, max: 86_400_000}
	flagRecoveryRetry = &intFlag{name: "recovery-retry-ms", usage: "retry the recovery of an agent still silent after `MS`, for agents whose policy rule has no restart budget or that match none (0 = one recovery per silence run)", cat: catRecovery,
		def: 0, min: 0, max: 86_400_000}
	flagRecoveryTimeout = &intFlag{name: "recovery-timeout-ms", usage: "SIGKILL a recovery child after `MS` (>= 100; 0 = never)", cat: catRecovery,
		def: 0, min: 100, max: 86_400_000, orZero: true}
	flagRecoveryCaptureBytes = &intFlag{name: "recovery-capture-bytes", usage: "capture at most `N` bytes combined (1 ... 1048576)", cat: catRecovery,
		def: recovery.DefaultCaptureBytes, min: 1, max: recovery.MaxCaptureBytes}

	// Audit.
	flagAuditMaxBytes = &intFlag{name: "recovery-audit-max-bytes", usage: "rotate the audit log at `N` bytes (>= 4096; 0 = never)", cat: catAudit,
		def: 0, min: 4096, max: maxInt64, orZero: true}
	flagAuditSyncEvery = &intFlag{name: "recovery-audit-sync-every", usage: "fdatasync the audit log every `N` records", cat: catAudit,
		def: 1, min: 1, max: 1<<31 - 1}
	flagAuditFsyncBudget = &intFlag{name: "audit-fsync-budget-ms", usage: "an fdatasync slower than `MS` is counted and defers syncing", cat: catAudit,
		def: 50, min: 1, max: 60_000}
	flagAuditSyncInterval = &intFlag{name: "audit-sync-interval-ms", usage: "also fdatasync the audit log every `MS` (0 = off)", cat: catAudit,
		def: 0, min: 0, max: 3_600_000}

	// Lifecycle.
	flagStateSaveInterval = &intFlag{name: "state-save-interval-ms", usage: "rewrite the state files every `MS` (>= 100), and at shutdown", cat: catLife,
		def: 5000, min: 100, max: 86_400_000}
	flagSelfWatchdog = &intFlag{name: "self-watchdog-secs", usage: "abort (SIGABRT) if the observer loop makes no progress for `N` s (1 to 86400; 0 = off)", cat: catLife,
		def: -1, defText: "4 when $WATCHDOG_USEC is set, else off", min: 0, max: 86400}
	flagShutdownAfter = &intFlag{name: "shutdown-after-secs", usage: "exit cleanly after `N` seconds (0 = never)", cat: catLife,
		def: 0, min: 0, max: 10 * 365 * 86400}
	flagShutdownGrace = &intFlag{name: "shutdown-grace-ms", usage: "how long shutdown waits for killed recovery children (`MS`, >= 100)", cat: catLife,
		def: 5000, min: 100, max: 3_600_000}
	// flagTestClockJump sets observer.Options.ClockJumpThreshold in
	// milliseconds (unset = clock.JumpThreshold). The end-to-end test of
	// the clock-jump grace uses it so that staging a jump takes a few
	// seconds instead of more than clock.JumpThreshold.
	flagTestClockJump = &intFlag{name: "test-clock-jump-ms", hidden: true, min: 100, max: 3_600_000}
)

// intFlags lists every integer flag (a test checks that flags() has no
// other).
var intFlags = []*intFlag{
	flagUDSRcvBuf, flagDrainInterval, flagThreshold, flagTrackerCapacity, flagMaxBeatRate, flagGlobalBeatRate, flagGlobalBeatBurst,
	flagExportMaxBytes, flagExportSyncEvery,
	flagPromRate, flagPromBurst, flagPromMaxConns, flagPromMaxServices,
	flagUDPPort,
	flagRecoveryDebounce, flagRecoveryRetry, flagRecoveryTimeout, flagRecoveryCaptureBytes,
	flagAuditMaxBytes, flagAuditSyncEvery, flagAuditFsyncBudget, flagAuditSyncInterval,
	flagStateSaveInterval, flagSelfWatchdog, flagShutdownAfter, flagShutdownGrace, flagTestClockJump,
}

// removed lists upstream flags that no longer exist, with the message that
// names the replacement.
var removed = map[string]string{
	"recovery-cmd":        "--recovery-cmd was removed (it ran through a shell): use --recovery-exec \"PROGRAM ARG...\"",
	"recovery-cmd-file":   "--recovery-cmd-file was removed (it ran through a shell): use --recovery-exec-file PATH",
	"i-accept-shell-risk": "--i-accept-shell-risk was removed: recovery never runs through a shell; use --recovery-exec",
	"key-env":             "--key-env was removed (keys in the environment leak): use --key-file PATH",
	"master-key-env":      "--master-key-env was removed (keys in the environment leak): use --master-key-file PATH",
	"accepted-key-env":    "--accepted-key-env was removed (keys in the environment leak): use --accepted-key-file PATH",
}

func flags() []cli.Flag {
	fs := []cli.Flag{
		// Unix socket.
		// --socket and --threshold-ms are required by the daemon only (the
		// client subcommands need neither); runAction checks them.
		&cli.StringFlag{Name: "socket", Usage: "bind the Unix datagram socket at `PATH` (parent directory must exist, not be a symlink, and not be group/other-writable unless sticky)", Category: catSocket, EnvVars: env("socket"), DefaultText: "required"},
		str("socket-mode", "permission bits of the socket file (`OCTAL`: 600, 0600 or 0o600)", catSocket, "0600", false),
		str("socket-group", "give the socket file to `GROUP` (name or numeric gid) so agents of other users in it can connect; --socket-mode then defaults to 0660", catSocket, "", false),
		list("allow-uid", "also accept beats from senders with this `UID` (repeatable)", catSocket),
		list("allow-gid", "also accept beats from senders whose effective (primary) group is `GID`; supplementary groups are not seen (repeatable)", catSocket),
		flagUDSRcvBuf.cli(),
		flagDrainInterval.cli(),

		// Tracking.
		flagThreshold.cli(),
		flagTrackerCapacity.cli(),
		str("tracker-eviction-policy", "which slots a full table may evict for a new agent (`POLICY`): strict (silent over 10 x threshold, stall already surfaced) or balanced (silent over 10 x threshold)", catTracker, "strict", false),
		str("clock-source", "stall clock (`SOURCE`): monotonic (pauses during suspend) or boottime (counts suspend)", catTracker, "monotonic", false),
		flagMaxBeatRate.cli(),
		flagGlobalBeatRate.cli(),
		flagGlobalBeatBurst.cli(),
		boolean("allow-cross-namespace-agents", "track senders from other PID namespaces", catTracker, false),
		boolean("strict-namespace-check", "exit 1 on the first sender from another PID namespace", catTracker, false),

		// Events file.
		str("export-file", "append one line per event to `PATH` (\"-\" = standard output)", catExport, "", false),
		flagExportMaxBytes.cli(),
		str("export-kinds", "write only these event `KINDS` (comma-separated: beat, stall, decode, io, ctrunc, mismatch, eviction, gave_up), or all but -KIND (e.g. -beat)", catExport, "", false),
		flagExportSyncEvery.cli(),
		str("export-format", "events file line format (`FORMAT`): tsv (the six columns) or json (one object per line with identity and wall time)", catExport, "tsv", false),
		boolean("files-group-readable", "create the events file and the audit log group-readable (0640) for a log-shipper or auditor group; default owner-only (0600)", catExport, false),

		// Metrics.
		str("prom-addr", "serve GET /metrics on `HOST:PORT` (requires --prom-token-file or an authenticating --web-config-file)", catMetrics, "", false),
		str("prom-token-file", "bearer token file (`PATH`, 64 hex digits, secret-file rules); optional when --web-config-file authenticates clients", catMetrics, "", false),
		str("web-config-file", "exporter-toolkit web configuration file (`PATH`, as node_exporter's): TLS, client certificates, basic auth for the metrics endpoint", catMetrics, "", false),
		flagPromRate.cli(),
		flagPromBurst.cli(),
		flagPromMaxConns.cli(),
		boolean("prom-per-pid", "export per-pid series (varta_agents{state} is always exported)", catMetrics, true),
		flagPromMaxServices.cli(),

		// UDP.
		flagUDPPort.cli(),
		str("udp-bind-addr", "UDP bind `IP` (default 127.0.0.1 with keys, 0.0.0.0 plain)", catUDP, "", false),
		str("key-file", "shared ChaCha20-Poly1305 key (`PATH`, 64 hex digits): enables secure UDP", catUDP, "", false),
		str("accepted-key-file", "additional accepted shared keys during rotation (`PATH`, one per line)", catUDP, "", false),
		str("master-key-file", "master key (`PATH`) for per-agent derived keys (64-byte frames)", catUDP, "", false),
		boolean("i-accept-plaintext-udp", "allow the unauthenticated plain UDP listener", catUDP, false),
		boolean("i-accept-secure-udp-non-loopback", "allow binding secure UDP to a non-loopback address", catUDP, false),
		boolean("secure-udp-i-accept-recovery-on-unauthenticated-transport", "let secure-UDP beats trigger recovery (OperatorAttestedTransport)", catUDP, false),
		boolean("plaintext-udp-i-accept-recovery-on-unauthenticated-transport", "let plain-UDP beats trigger recovery (OperatorAttestedTransport)", catUDP, false),

		// Recovery.
		str("recovery-exec", "run \"`PROGRAM ARG...`\" (no shell; {pid} in arguments is replaced) for each stall", catRecovery, "", false),
		str("recovery-exec-file", "read the recovery command from `PATH` (secret-file rules)", catRecovery, "", false),
		flagRecoveryDebounce.cli(),
		str("policy-file", "service rules (`PATH`, YAML, secret-file rules): names, thresholds, recovery and restart budgets; SIGHUP reloads it", catRecovery, "", false),
		flagRecoveryRetry.cli(),
		flagRecoveryTimeout.cli(),
		list("recovery-env", "add `KEY=VALUE` to the child's environment (repeatable)", catRecovery),
		boolean("recovery-inherit-env", "pass the daemon's whole environment to recovery children", catRecovery, false),
		boolean("recovery-capture-stdio", "capture (count, then discard) the child's stdout and stderr", catRecovery, false),
		flagRecoveryCaptureBytes.cli(),

		// Audit.
		str("recovery-audit-file", "hash-chained audit log of recovery decisions (`PATH`)", catAudit, "", false),
		flagAuditMaxBytes.cli(),
		flagAuditSyncEvery.cli(),
		flagAuditFsyncBudget.cli(),
		flagAuditSyncInterval.cli(),

		// Control socket.
		&cli.StringFlag{Name: "control-socket", Usage: "serve the operator API (HTTP/JSON on a Unix stream socket) at `PATH`; \"off\" = none", Category: catControl, EnvVars: env("control-socket"), DefaultText: "control.sock beside --socket"},
		str("control-socket-mode", "permission bits of the control socket file (`OCTAL`); callers are also checked by uid", catControl, "0600", false),
		list("control-allow-uid", "also let this `UID` use the control socket (repeatable; root and the daemon's uid always may)", catControl),
		str("state-dir", "keep the snoozes, the tracked agents and the secure replay marks across restarts in `DIR` (owner-only, created 0700 if missing; empty = in memory only, lost at exit)", catControl, "", false),

		// Lifecycle.
		flagStateSaveInterval.cli(),
		str("heartbeat-file", "rewrite `PATH` atomically every tick with \"<ticks> <observer_ns>\"", catLife, "", false),
		flagSelfWatchdog.cli(),
		str("hw-watchdog", "kick the hardware watchdog character device at `PATH` every tick", catLife, "", false),
		flagShutdownAfter.cli(),
		flagShutdownGrace.cli(),
		str("log-format", "log line format (`FORMAT`) on stderr: text (varta-watch: <message> key=value ...) or json (one object per line)", catLife, "text", false),
	}
	// flagTestClockJump is for tests only: hidden from help and the man
	// page, with no environment variable.
	fs = append(fs, flagTestClockJump.cli())
	for _, name := range slices.Sorted(maps.Keys(removed)) {
		if name == "i-accept-shell-risk" {
			fs = append(fs, &cli.BoolFlag{Name: name, Hidden: true})
			continue
		}
		fs = append(fs, &cli.StringFlag{Name: name, Hidden: true})
	}
	return fs
}
