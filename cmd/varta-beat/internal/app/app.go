package app

import (
	"errors"
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
		Version:         buildinfo.Version,
		HideHelpCommand: true,
		ExitErrHandler:  func(*cli.Context, error) {},
	}
}

// ManPage renders the man page of the App.
func ManPage() (string, error) { return New().ToManWithSection(1) }

// Run runs the App with args and returns the process exit code.
func Run(args []string) int { return RunWith(New(), args, os.Stderr) }

// RunWith runs app and maps its error to an exit code: an error carrying
// its own code (cli.ExitCoder) keeps it; any other error is a usage error.
func RunWith(a *cli.App, args []string, stderr io.Writer) int {
	err := a.Run(args)
	if err == nil {
		return exitcode.OK
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		if msg := err.Error(); msg != "" {
			fmt.Fprintf(stderr, "%s: %s\n", Name, msg)
		}
		return ec.ExitCode()
	}
	fmt.Fprintf(stderr, "%s: %v\nRun '%s --help' for usage.\n", Name, err, Name)
	return exitcode.Usage
}
