package app

import (
	"maps"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// testClockJumpFlag sets observer.Options.ClockJumpThreshold in
// milliseconds (100 to 3,600,000; unset = clock.JumpThreshold). The
// end-to-end test of the clock-jump grace uses it so that staging a jump
// takes a few seconds instead of more than clock.JumpThreshold.
const testClockJumpFlag = "test-clock-jump-ms"

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

func num(name, usage, cat string, def int64) *cli.Int64Flag {
	return &cli.Int64Flag{Name: name, Usage: usage, Category: cat, Value: def, EnvVars: env(name)}
}

// computed sets the default shown in help for a flag whose default is
// derived from other settings.
func computed(f *cli.Int64Flag, text string) *cli.Int64Flag {
	f.DefaultText = text
	return f
}

func boolean(name, usage, cat string, def bool) *cli.BoolFlag {
	return &cli.BoolFlag{Name: name, Usage: usage, Category: cat, Value: def, EnvVars: env(name)}
}

func list(name, usage, cat string) *cli.StringSliceFlag {
	return &cli.StringSliceFlag{Name: name, Usage: usage, Category: cat, EnvVars: env(name)}
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
		list("allow-gid", "also accept beats from senders with this `GID` (repeatable)", catSocket),
		num("uds-rcvbuf-bytes", "SO_RCVBUF request in `BYTES` (0 = kernel default)", catSocket, 1048576),

		// Tracking.
		&cli.Int64Flag{Name: "threshold-ms", Usage: "an agent silent for `MS` milliseconds is stalled (>= 10)", Category: catTracker, EnvVars: env("threshold-ms"), DefaultText: "required"},
		num("tracker-capacity", "maximum tracked agents (`N`, 1 ... 1048576)", catTracker, 4096),
		str("tracker-eviction-policy", "which silent slots may be evicted when full: `strict` (stall surfaced) or balanced", catTracker, "strict", false),
		str("clock-source", "stall clock: `monotonic` (pauses during suspend) or boottime (counts suspend)", catTracker, "monotonic", false),
		num("max-beat-rate", "per-pid accepted frames per second (`N`; 0 = off)", catTracker, 100),
		computed(num("global-beat-rate", "global frames per second, rejected frames included (`N`; 0 = off)", catTracker, -1), "max(5000, 2 x --tracker-capacity)"),
		computed(num("global-beat-burst", "global token bucket size (`N`; 0 = off)", catTracker, -1), "2 x --global-beat-rate"),
		boolean("allow-cross-namespace-agents", "track senders from other PID namespaces", catTracker, false),
		boolean("strict-namespace-check", "exit 1 on the first sender from another PID namespace", catTracker, false),

		// Events file.
		str("export-file", "append one line per event to `PATH` (\"-\" = standard output)", catExport, "", false),
		num("export-file-max-bytes", "rotate the events file at `N` bytes (>= 4096; 0 = never), keeping 5 generations", catExport, 0),
		str("export-kinds", "write only these event `KINDS` (comma-separated: beat, stall, decode, io, ctrunc, mismatch, eviction, gave_up), or all but -KIND (e.g. -beat)", catExport, "", false),
		num("export-file-sync-every", "fdatasync the events file every `N` lines (0 = only at rotation and shutdown)", catExport, 0),
		str("export-format", "events file line format (`FORMAT`): tsv (the six columns) or json (one object per line with identity and wall time)", catExport, "tsv", false),
		boolean("files-group-readable", "create the events file and the audit log group-readable (0640) for a log-shipper or auditor group; default owner-only (0600)", catExport, false),

		// Metrics.
		str("prom-addr", "serve GET /metrics on `HOST:PORT` (requires --prom-token-file or an authenticating --web-config-file)", catMetrics, "", false),
		str("prom-token-file", "bearer token file (`PATH`, 64 hex digits, secret-file rules); optional when --web-config-file authenticates clients", catMetrics, "", false),
		str("web-config-file", "exporter-toolkit web configuration file (`PATH`, as node_exporter's): TLS, client certificates, basic auth for the metrics endpoint", catMetrics, "", false),
		num("prom-rate-limit-per-sec", "per-client-IP scrape rate (`N`/s; 0 = off)", catMetrics, 5),
		num("prom-rate-limit-burst", "per-client-IP scrape burst (`N`; 0 = off)", catMetrics, 10),
		num("prom-max-connections", "open connections to the metrics endpoint (`N`, 1-65536); at the limit the longest-idle one is closed", catMetrics, 64),
		boolean("prom-per-pid", "export per-pid series (varta_agents{state} is always exported)", catMetrics, true),
		num("prom-max-services", "export at most `N` distinct service label values; the rest count as service=\"other\"", catMetrics, 1000),

		// UDP.
		num("udp-port", "also listen for beats on UDP `PORT` (0 = off)", catUDP, 0),
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
		num("recovery-debounce-ms", "do not recover the same process again within `MS`", catRecovery, 1000),
		str("policy-file", "service rules (`PATH`, YAML, secret-file rules): names, thresholds, recovery and restart budgets; SIGHUP reloads it", catRecovery, "", false),
		num("recovery-retry-ms", "retry the recovery of an agent still silent after `MS`, for agents whose policy rule has no restart budget or that match none (0 = one recovery per silence run)", catRecovery, 0),
		num("recovery-timeout-ms", "SIGKILL a recovery child after `MS` (>= 100; 0 = never)", catRecovery, 0),
		list("recovery-env", "add `KEY=VALUE` to the child's environment (repeatable)", catRecovery),
		boolean("recovery-inherit-env", "pass the daemon's whole environment to recovery children", catRecovery, false),
		boolean("recovery-capture-stdio", "capture (count, then discard) the child's stdout and stderr", catRecovery, false),
		num("recovery-capture-bytes", "capture at most `N` bytes combined (1 ... 1048576)", catRecovery, 4096),

		// Audit.
		str("recovery-audit-file", "hash-chained audit log of recovery decisions (`PATH`)", catAudit, "", false),
		num("recovery-audit-max-bytes", "rotate the audit log at `N` bytes (>= 4096; 0 = never)", catAudit, 0),
		num("recovery-audit-sync-every", "fdatasync the audit log every `N` records", catAudit, 1),
		num("audit-fsync-budget-ms", "an fdatasync slower than `MS` is counted and defers syncing", catAudit, 50),
		num("audit-sync-interval-ms", "also fdatasync the audit log every `MS` (0 = off)", catAudit, 0),

		// Control socket.
		&cli.StringFlag{Name: "control-socket", Usage: "serve the operator API (HTTP/JSON on a Unix stream socket) at `PATH`; \"off\" = none", Category: catControl, EnvVars: env("control-socket"), DefaultText: "control.sock beside --socket"},
		str("control-socket-mode", "permission bits of the control socket file (`OCTAL`); callers are also checked by uid", catControl, "0600", false),
		list("control-allow-uid", "also let this `UID` use the control socket (repeatable; root and the daemon's uid always may)", catControl),
		str("state-dir", "keep the snoozes, the tracked agents and the secure replay marks across restarts in `DIR` (owner-only, created 0700 if missing; empty = in memory only, lost at exit)", catControl, "", false),

		// Lifecycle.
		num("state-save-interval-ms", "rewrite the state files every `MS` (>= 100), and at shutdown", catLife, 5000),
		str("heartbeat-file", "rewrite `PATH` atomically every tick with \"<ticks> <observer_ns>\"", catLife, "", false),
		computed(num("self-watchdog-secs", "abort (SIGABRT) if the observer loop makes no progress for `N` s (1 to 86400; 0 = off)", catLife, -1), "4 when $WATCHDOG_USEC is set, else off"),
		str("hw-watchdog", "kick the hardware watchdog character device at `PATH` every tick", catLife, "", false),
		num("shutdown-after-secs", "exit cleanly after `N` seconds (0 = never)", catLife, 0),
		num("shutdown-grace-ms", "how long shutdown waits for killed recovery children (`MS`, >= 100)", catLife, 5000),
		str("log-format", "`text` (varta-watch: <message> on stderr) or json", catLife, "text", false),
	}
	// testClockJumpFlag is for tests only: hidden from help and the man
	// page, with no environment variable.
	fs = append(fs, &cli.Int64Flag{Name: testClockJumpFlag, Hidden: true})
	for _, name := range slices.Sorted(maps.Keys(removed)) {
		if name == "i-accept-shell-risk" {
			fs = append(fs, &cli.BoolFlag{Name: name, Hidden: true})
			continue
		}
		fs = append(fs, &cli.StringFlag{Name: name, Hidden: true})
	}
	return fs
}
