package app

import (
	"github.com/varta-go/varta/pkg/manpage"
)

// ManPage renders the man page of the App: the name, summary, description
// and options come from the CLI definitions (pkg/manpage.FromApp), the
// other sections are written here.
func ManPage() (string, error) {
	return manpage.RenderApp(New(), manpage.AppPage{Section: 8, Sections: watchSections,
		// The daemon (no command) first, then the control-socket clients.
		Synopsis: []string{
			"--socket PATH --threshold-ms MS [options]",
			"agents [options]",
			"services [options]",
			"snooze [options] --for DURATION --reason TEXT TARGET",
			"resume [options] TARGET",
			"reload [options]",
		},
	})
}

var watchSections = []manpage.Section{
	{Title: "Exit status", Blocks: []manpage.Block{
		manpage.Item("0", "clean exit: SIGINT, SIGTERM or --shutdown-after-secs; for a command, the daemon did what was asked."),
		manpage.Item("1", "runtime failure: a socket could not be bound, a file, key or watchdog device could not be opened, --strict-namespace-check saw a sender from another PID namespace, or audit records could not be written by shutdown (the message names them); for a command, the daemon could not be reached or refused the request (reload: the new configuration was refused and the previous one stays)."),
		manpage.Item("2", "configuration or usage error: one line naming the flag and the rule, and a --help hint, on standard error; for a command also a malformed target, duration or reason (checked before anything is sent)."),
		manpage.Item("SIGABRT", "not an exit status: the self-watchdog (--self-watchdog-secs) found the control loop making no progress; the daemon prints a line naming the stage it is stuck in and dies of SIGABRT (a core dump where the core limit allows it; shells report status 134)."),
	}},
	{Title: "Signals", Blocks: []manpage.Block{
		manpage.Item("SIGINT, SIGTERM", "shut down: stop receiving, send STOPPING=1, SIGKILL outstanding recovery children and wait up to --shutdown-grace-ms for them, close the metrics endpoint, flush and fdatasync the audit log and the events file, remove the socket file if the daemon bound it (an inherited, socket-activated socket is only closed), disarm the hardware watchdog, exit 0 (1 when audit records could not be written). One log line names the reason."),
		manpage.Item("SIGHUP", "reopen the events file (for logrotate's create mode) and reload --policy-file (on an error the previous policy stays in force). varta-watch reload does the same over the control socket and prints the result."),
	}},
	{Title: "Environment", Blocks: []manpage.Block{
		manpage.P("Every flag may be given as VARTA_WATCH_<NAME>: the flag name in upper case with dashes as underscores, e.g. VARTA_WATCH_THRESHOLD_MS=1500. A flag on the command line wins over the environment."),
		manpage.Item("NOTIFY_SOCKET", "systemd notification socket: READY=1 once every listener and file is up, a short STATUS= line when it changes (at most every 5 s), STOPPING=1 at shutdown."),
		manpage.Item("WATCHDOG_USEC, WATCHDOG_PID", "systemd service watchdog: WATCHDOG=1 every third of WATCHDOG_USEC, from READY=1 on, while the control loop makes progress; also turns the self-watchdog on (4 s)."),
		manpage.Item("LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES", "systemd socket activation: when LISTEN_PID is the daemon's pid, the beat socket is taken from file descriptor 3 instead of being bound. It must be one AF_UNIX SOCK_DGRAM socket bound to --socket, else the daemon exits 1 naming the rule; SO_PASSCRED is turned on, --socket-mode and --socket-group do not apply, and the socket file is never removed. Beats sent while the daemon restarts wait in the socket. The variables are removed from the environment of recovery programs."),
	}},
	{Title: "Files", Blocks: []manpage.Block{
		manpage.Item("/run/varta/varta.sock", "the conventional socket path (--socket); agents default to it or to $VARTA_SOCKET."),
		manpage.Item("/var/lib/varta/audit.log", "the conventional audit log (--recovery-audit-file), with rotated generations audit.log.1 ... audit.log.5; verify it with varta-audit(1)."),
		manpage.Item("/var/log/varta/events.tsv", "the conventional events file (--export-file), with rotated generations events.tsv.1 ... events.tsv.5; one tab-separated line per beat, stall or eviction."),
		manpage.Item("/run/varta/control.sock", "the control socket (--control-socket; control.sock beside --socket), mode 0600, HTTP/JSON (curl --unix-socket works). The commands look for it here when neither --control-socket nor --socket is given."),
		manpage.Item("STATE-DIR/snoozes.json", "the snoozes in force (--state-dir), rewritten atomically on every change, owner-only; a damaged file stops the start."),
		manpage.Item("/etc/varta/prom.token", "the conventional bearer token file for the metrics endpoint (--prom-token-file): 64 hex digits, owned by the daemon's user, not readable by others."),
		manpage.Item("/etc/default/varta-watch", "the configuration of varta-watch.service: every flag as a VARTA_WATCH_* variable."),
		manpage.Item("/usr/lib/systemd/system/varta-watch.service, varta-watch.socket", "the systemd units of the Debian package: Type=notify with WatchdogSec=, a sandbox, and the beat socket held by systemd (socket activation)."),
	}},
	{Title: "Examples", Blocks: []manpage.Block{
		manpage.P("Try it by hand: watch a socket in the current directory and print every event; beat into it from a second shell, stop the beat with Ctrl-C and see the stall 1.5 s later."),
		manpage.Example("varta-watch --socket ./varta.sock --threshold-ms 1500 --export-file -\nvarta-beat run --socket ./varta.sock"),
		manpage.P("A production start: recovery restarts the agent's systemd unit (see deploy/recovery/restart-unit), the audit log rotates at 64 MiB, metrics are served on localhost with a token."),
		manpage.Example(`varta-watch --socket /run/varta/varta.sock --threshold-ms 2000 \
  --export-file /var/log/varta/events.tsv --export-file-max-bytes 104857600 \
  --prom-addr 127.0.0.1:9464 --prom-token-file /etc/varta/prom.token \
  --recovery-exec "/usr/lib/varta/restart-unit {pid}" \
  --recovery-timeout-ms 30000 \
  --recovery-audit-file /var/lib/varta/audit.log \
  --recovery-audit-max-bytes 67108864`),
		manpage.P("Keep a deploy quiet: stalls of the service web are still detected and written for ten minutes, but not recovered and not alerted on; the snooze is audited."),
		manpage.Example(`varta-watch snooze web --for 10m --reason "deploy 4711"
varta-watch agents --state stalled`),
		manpage.P("The same settings from the environment, as in a systemd EnvironmentFile:"),
		manpage.Example("VARTA_WATCH_SOCKET=/run/varta/varta.sock\nVARTA_WATCH_THRESHOLD_MS=2000\nVARTA_WATCH_RECOVERY_AUDIT_FILE=/var/lib/varta/audit.log"),
	}},
	{Title: "See also", Blocks: []manpage.Block{
		manpage.P("varta-beat(1), varta-audit(1), systemd.service(5), systemd.socket(5). The documents in the source tree: docs/guide.md (concepts and a first day), docs/deploy.md (systemd units, the package), docs/fleet.md (Prometheus, Alertmanager, agents on other hosts), docs/observer.md, docs/recovery.md, docs/services.md, docs/control.md (the control socket, its HTTP API and snoozes), docs/events-file.md, docs/metrics.md, docs/audit.md."),
	}},
}
