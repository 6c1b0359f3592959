package exitcode

import (
	"errors"
	"fmt"
	"io"
)

// Coder is an error that carries its own exit code. urfave/cli's
// cli.ExitCoder has exactly this method set, so errors built with
// cli.Exit satisfy it without this package importing the CLI library.
type Coder interface {
	error
	ExitCode() int
}

// Report maps the error a command returned to the process exit code and
// prints it on stderr as "<program>: <message>": nil is OK; an error
// carrying its own code keeps it (an empty message prints nothing); any
// other error is a usage error (flag parsing, a missing argument) and is
// followed by a hint to run --help. A usage error with its own code gets
// the hint too.
func Report(program string, err error, stderr io.Writer) int {
	if err == nil {
		return OK
	}
	code := Usage
	var c Coder
	if errors.As(err, &c) {
		code = c.ExitCode()
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintf(stderr, "%s: %s\n", program, msg)
	}
	if code == Usage {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", program)
	}
	return code
}
