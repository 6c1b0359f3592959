package app

import "github.com/urfave/cli/v2"

// quietUsage makes a flag-parse error come back as the bare error, which
// exitcode.Report prints as one line and a --help hint on stderr (exit 2),
// instead of urfave/cli's "Incorrect Usage" followed by the whole help on
// stdout. It applies to the App and every command under it.
func quietUsage(a *cli.App) {
	bare := func(_ *cli.Context, err error, _ bool) error { return err }
	a.OnUsageError = bare
	var walk func([]*cli.Command)
	walk = func(cmds []*cli.Command) {
		for _, c := range cmds {
			c.OnUsageError = bare
			walk(c.Subcommands)
		}
	}
	walk(a.Commands)
}
