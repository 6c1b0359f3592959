package app

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/varta-go/varta/cmd/varta-audit/internal/progress"
	"github.com/varta-go/varta/cmd/varta-audit/internal/report"
	"github.com/varta-go/varta/cmd/varta-audit/internal/summary"
	"github.com/varta-go/varta/pkg/audit"
	"github.com/varta-go/varta/pkg/exitcode"
)

func verifyCommand(e env) *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "verify PATH and its rotated generations; exit 0 intact, 1 failed, 2 usage or I/O error",
		ArgsUsage: "PATH",
		Description: "Verifies PATH.5 ... PATH.1 (oldest first; missing ones are fine) and PATH: columns and " +
			"field domains of every record, the hash chain (every independent break is reported with file, line and seq), " +
			"strictly increasing seq (gaps are losses, not tamper), resume and rotation boots, and chain downgrades. " +
			"Exit status 0 when intact, 1 when verification failed, 2 on usage or I/O errors.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "allow-unchained", Usage: "accept records without chain (\"-\"): check structure and seq only; integrity is then not verified"},
			&cli.BoolFlag{Name: "strict", Usage: "treat warnings (seq gaps, torn tails, legacy lines) as failures"},
			&cli.StringFlag{Name: "anchor", Usage: "the chain must contain this `HASH` (64 hex digits: a head sealed earlier)"},
			&cli.StringFlag{Name: "anchor-file", Usage: "read the anchor from `FILE` (e.g. the saved output of varta-audit head)"},
			formatFlag(), noProgressFlag(),
		},
		Action: func(c *cli.Context) error {
			path, f, err := pathAndFormat(c)
			if err != nil {
				return err
			}
			anchor, err := anchorOf(c)
			if err != nil {
				return err
			}
			rep, err := verifyWithProgress(c, e, path, audit.VerifyOptions{
				AllowUnchained: c.Bool("allow-unchained"), Strict: c.Bool("strict"), Anchor: anchor,
			})
			if err != nil {
				return err
			}
			if err := report.Verify(c.App.Writer, rep, f); err != nil {
				return ioExit("verify", err)
			}
			if !rep.Intact() {
				return cli.Exit("", exitcode.Failure)
			}
			return nil
		},
	}
}

// verifyWithProgress runs audit.Verify with a progress bar on a terminal.
func verifyWithProgress(c *cli.Context, e env, path string, opts audit.VerifyOptions) (*audit.Report, error) {
	var total int64
	if gens, err := audit.ListGenerations(path); err == nil {
		for _, g := range gens {
			total += g.Size
		}
	}
	show := !c.Bool("no-progress") && e.isTerminal(c.App.ErrWriter) && total >= e.progressMin
	bar := progress.Start(c.App.ErrWriter, show, total, c.Command.Name)
	opts.Progress = bar.Add
	rep, err := audit.Verify(path, opts)
	bar.Finish()
	if err != nil {
		return nil, ioExit(c.Command.Name, err)
	}
	return rep, nil
}

func headCommand(e env) *cli.Command {
	return &cli.Command{
		Name:      "head",
		Usage:     "print the current chain head (seq and hash): the value to seal in external storage",
		ArgsUsage: "PATH",
		Description: "Prints \"SEQ HASH\" of the last record of PATH (or of the newest generation holding one), " +
			"read from the tail of the file without verifying. Seal it in write-once storage; " +
			"verify --anchor (or --anchor-file) later proves the log still contains it. " +
			"Exit status 1 when the log holds no record, its last record line is malformed or carries no chain.",
		Flags: []cli.Flag{formatFlag()},
		Action: func(c *cli.Context) error {
			path, f, err := pathAndFormat(c)
			if err != nil {
				return err
			}
			h, err := audit.ReadHead(path)
			switch {
			case errors.Is(err, audit.ErrMalformed), errors.Is(err, audit.ErrNoRecords):
				return cli.Exit(fmt.Sprintf("head: %v", err), exitcode.Failure)
			case err != nil:
				return ioExit("head", err)
			}
			if err := report.Head(c.App.Writer, h, f); err != nil {
				return ioExit("head", err)
			}
			if h.Unchained {
				return cli.Exit("head: the last record carries no chain (log written without chain support): nothing to seal", exitcode.Failure)
			}
			return nil
		},
	}
}

func summarizeCommand(e env) *cli.Command {
	return &cli.Command{
		Name:      "summarize",
		Usage:     "tables per agent pid, daemon boots and totals",
		ArgsUsage: "PATH",
		Description: "Per agent pid: stalls acted on (spawns plus refusals), spawns, outcomes, refusals by reason and the " +
			"recovery duration p50/p95/max (nearest rank over complete records); daemon boots by reason and restarts; totals. " +
			"The log is verified in the same pass and the verdict is shown; the exit status does not depend on it (use verify).",
		Flags: []cli.Flag{formatFlag(), utcFlag(), noProgressFlag()},
		Action: func(c *cli.Context) error {
			path, f, err := pathAndFormat(c)
			if err != nil {
				return err
			}
			b := summary.NewBuilder(path)
			rep, err := verifyWithProgress(c, e, path, audit.VerifyOptions{
				AllowUnchained: true,
				OnRecord:       func(_ audit.Position, r *audit.Record) { b.Add(r) },
			})
			if err != nil {
				return err
			}
			if err := report.Summary(c.App.Writer, b.Finish(rep), f, locationOf(c)); err != nil {
				return ioExit("summarize", err)
			}
			return nil
		},
	}
}

func showCommand(e env) *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "list the records as a readable table",
		ArgsUsage: "PATH",
		Description: "Lists the records of PATH.5 ... PATH with local times. Filters combine (all must match): " +
			"--pid selects spawn, complete and refused records of that agent pid; --kind takes boot, spawn, complete, " +
			"refused, control (repeat or separate with commas); --since and --until take an RFC 3339 time or a duration meaning " +
			"that long ago (1h, 30m) and are inclusive. A warning goes to stderr when the log does not verify.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "pid", Usage: "only spawn, complete and refused records of agent `PID`"},
			&cli.StringSliceFlag{Name: "kind", Usage: "only records of these `KINDS`: boot, spawn, complete, refused, control (repeat or separate with commas)"},
			&cli.StringFlag{Name: "since", Usage: "only records at or after `TIME`: RFC 3339 (2024-05-01T12:00:00Z) or a duration ago (90m, 24h)"},
			&cli.StringFlag{Name: "until", Usage: "only records at or before `TIME`: RFC 3339 or a duration ago"},
			formatFlag(), utcFlag(), noProgressFlag(),
		},
		Action: func(c *cli.Context) error {
			path, f, err := pathAndFormat(c)
			if err != nil {
				return err
			}
			flt, err := filterOf(c, e.now())
			if err != nil {
				return err
			}
			l := report.NewLister(c.App.Writer, f, locationOf(c))
			rep, err := verifyWithProgress(c, e, path, audit.VerifyOptions{
				AllowUnchained: true,
				OnRecord: func(pos audit.Position, r *audit.Record) {
					if flt.match(r) {
						l.Add(pos, r)
					}
				},
			})
			if err != nil {
				return err
			}
			if err := l.Close(); err != nil {
				return ioExit("show", err)
			}
			if !rep.Intact() {
				fmt.Fprintf(c.App.ErrWriter, "%s: warning: the log does not verify (%s); run varta-audit verify %s\n",
					Name, rep.Failures[0], path)
			}
			return nil
		},
	}
}

func rotateCommand(e env) *cli.Command {
	return &cli.Command{
		Name:      "rotate",
		Usage:     "rotate PATH exactly as varta-watch would; refuses while the daemon holds the file",
		ArgsUsage: "PATH",
		Description: "Removes PATH.5, shifts PATH.4 ... PATH.1 up, moves PATH to PATH.1 (copy, sync and unlink across " +
			"file systems) and creates a new PATH (0600) with the v2 header and a rotation boot continuing the chain " +
			"and seq of PATH.1; then syncs the file and the directory. Refuses (exit status 1) while another process " +
			"— a running varta-watch — holds the file's lock, or when PATH does not end with a complete chained record.",
		Flags: []cli.Flag{formatFlag()},
		Action: func(c *cli.Context) error {
			path, f, err := pathAndFormat(c)
			if err != nil {
				return err
			}
			res, err := audit.Rotate(path, audit.RotateOptions{})
			switch {
			case errors.Is(err, audit.ErrLocked):
				return cli.Exit(fmt.Sprintf("rotate: refused: %s is locked by another process (a running varta-watch rotates it itself with --recovery-audit-max-bytes)", path), exitcode.Failure)
			case errors.Is(err, audit.ErrTailNotClean):
				return cli.Exit(fmt.Sprintf("rotate: refused: %v", err), exitcode.Failure)
			case err != nil:
				return ioExit("rotate", err)
			}
			if err := report.Rotate(c.App.Writer, res, f); err != nil {
				return ioExit("rotate", err)
			}
			return nil
		},
	}
}

// ioExit reports an I/O error (a missing log included) with exit status 2.
func ioExit(cmd string, err error) error {
	return cli.Exit(fmt.Sprintf("%s: %v", cmd, err), exitcode.Usage)
}
