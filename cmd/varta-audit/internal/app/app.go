package app

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/varta-go/varta/cmd/varta-audit/internal/progress"
	"github.com/varta-go/varta/pkg/buildinfo"
	"github.com/varta-go/varta/pkg/exitcode"
)

// Name of the program.
const Name = "varta-audit"

// env is what the commands take from the process: the clock (for --since
// 1h) and the terminal test (for progress bars). Tests replace them.
type env struct {
	now         func() time.Time
	isTerminal  func(io.Writer) bool
	progressMin int64 // input size from which a progress bar is shown
}

// New builds the varta-audit command-line application. main, the tests and the
// man-page generator all use this constructor.
func New() *cli.App {
	return newApp(env{now: time.Now, isTerminal: progress.IsTerminal, progressMin: progress.MinBytes})
}

func newApp(e env) *cli.App {
	return &cli.App{
		Name:  Name,
		Usage: "verify, summarize, show and rotate varta recovery audit logs",
		Description: "varta-audit reads the recovery audit log (schema v2) that varta-watch writes with " +
			"--recovery-audit-file, together with its rotated generations PATH.5 ... PATH.1. " +
			"Exit status: 0 intact (seq gaps and torn tails are warnings), 1 verification failed " +
			"(or rotate refused), 2 usage or I/O error.",
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
			verifyCommand(e),
			headCommand(e),
			summarizeCommand(e),
			showCommand(e),
			rotateCommand(e),
		},
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
	return exitcode.Report(Name, a.Run(args), stderr)
}
