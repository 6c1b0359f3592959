package app

import (
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/varta-go/varta/pkg/buildinfo"
	"github.com/varta-go/varta/pkg/exitcode"
)

// Name of the program.
const Name = "varta-beat"

// New builds the varta-beat command-line application. main, the tests and the
// man-page generator all use this constructor.
func New() *cli.App {
	return &cli.App{
		Name:            Name,
		Usage:           "reference VLP heartbeat agent",
		Description:     description,
		Version:         buildinfo.Version,
		HideHelpCommand: true,
		ExitErrHandler:  func(*cli.Context, error) {},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("unknown command %q", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
		Commands: []*cli.Command{
			runCommand(),
			onceCommand(),
			terminalCommand(),
			execCommand(),
			loadCommand(),
			keygenCommand(),
			loadAgentCommand(),
		},
	}
}

const description = `varta-beat sends VLP v0.2 heartbeats ("beats") to a varta observer over
its Unix datagram socket (the default, kernel-attested), plain UDP (--udp) or
secure UDP (--udp with --key-file or --master-key-file). A dropped beat is
normal while the observer restarts; only sustained silence is a stall.

run beats until SIGINT/SIGTERM, then sends one terminal (dying-gasp) frame
and exits 0; it fails at start when no observer listens. once and terminal
treat an absent observer as a drop (exit 3). exec runs CMD even without an
observer, beats while it lives (with --require-output-within only while it
writes output), forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT, sends a terminal
frame when it fails and exits with its code (128+N for signal N). load
starts one child process per agent over a Unix socket and uses synthetic
pids over UDP. keygen never overwrites a file.

The socket path defaults to $VARTA_SOCKET, else /run/varta/varta.sock.

Exit codes: 0 success, 1 failure, 2 usage error, 3 beat dropped (once, terminal).`

// Run runs the App with args and returns the process exit code.
func Run(args []string) int { return RunWith(New(), args, os.Stderr) }

// RunWith runs app and maps its error to an exit code (exitcode.Report):
// an error carrying its own code (cli.Exit) keeps it; any other error, such
// as a flag the App does not know, is a usage error.
func RunWith(a *cli.App, args []string, stderr io.Writer) int {
	a.ErrWriter = stderr
	quietUsage(a)
	return exitcode.Report(Name, a.Run(args), stderr)
}
