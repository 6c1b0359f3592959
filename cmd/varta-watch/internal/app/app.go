package app

import (
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/varta-go/varta/pkg/buildinfo"
	"github.com/varta-go/varta/pkg/exitcode"
)

// Name of the program.
const Name = "varta-watch"

// New builds the varta-watch command-line application. main, the tests and
// the man-page generator all use this constructor.
func New() *cli.App {
	return &cli.App{
		Name:  Name,
		Usage: "process-liveness observer daemon",
		Description: "varta-watch receives VLP heartbeats from agent processes over a Unix datagram socket\n" +
			"(and optionally plain or encrypted UDP), surfaces a stall when an agent stays silent past\n" +
			"--threshold-ms, runs a recovery program for it behind strict safety gates, exports\n" +
			"Prometheus metrics and writes a hash-chained audit log of every recovery decision.\n\n" +
			"Every flag may also be given as an environment variable VARTA_WATCH_<NAME>\n" +
			"(upper case, dashes as underscores), e.g. VARTA_WATCH_THRESHOLD_MS=1500.\n\n" +
			"Without a command varta-watch runs the daemon (--socket and --threshold-ms are required).\n" +
			"The commands agents, services, snooze, resume and reload are clients of a running\n" +
			"daemon's control socket (--control-socket, or control.sock beside --socket, else\n" +
			"/run/varta/control.sock).\n\n" +
			"Exit status: 0 clean exit, 1 runtime failure (bind, file, key, watchdog device,\n" +
			"strict namespace violation; for a command: daemon unreachable or refusing),\n" +
			"2 configuration or usage error.",
		Version:         buildinfo.Version,
		HideHelpCommand: true,
		Flags:           flags(),
		Action:          runAction,
		Commands:        commands(),
		ExitErrHandler:  func(*cli.Context, error) {},
	}
}

// Run runs the App with args and returns the process exit code.
func Run(args []string) int { return RunWith(New(), args, os.Stderr) }

// RunWith runs app and maps its error to an exit code (exitcode.Report):
// an error carrying its own code (cli.Exit) keeps it; any other error, such
// as a flag the App does not know, is a usage error.
func RunWith(a *cli.App, args []string, stderr io.Writer) int {
	a.ErrWriter = stderr
	quietUsage(a)
	return exitcode.Report(Name, a.Run(permute(a, args)), stderr)
}
