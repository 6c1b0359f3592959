package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/urfave/cli/v2"

	"github.com/varta-go/varta/cmd/varta-watch/internal/control"
	"github.com/varta-go/varta/cmd/varta-watch/internal/snooze"
	"github.com/varta-go/varta/pkg/exitcode"
)

// ControlSocketName is the control socket's file name beside --socket.
const ControlSocketName = "control.sock"

// DefaultControlSocket is where the commands look for the daemon when
// neither --control-socket nor --socket (nor their environment variables)
// is given: control.sock beside the conventional beat socket
// /run/varta/varta.sock, the one agents default to.
const DefaultControlSocket = "/run/varta/" + ControlSocketName

// defaultControlSocket is DefaultControlSocket; tests point it elsewhere.
var defaultControlSocket = DefaultControlSocket

// controlOff is the --control-socket value that disables the server.
const controlOff = "off"

// clientFlags are the flags every client subcommand takes: how to find the
// daemon, with the daemon's own names and environment variables.
func clientFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "control-socket", Usage: "the daemon's control socket (`PATH`; default: control.sock beside --socket, else " + DefaultControlSocket + ")", EnvVars: env("control-socket")},
		&cli.StringFlag{Name: "socket", Usage: "the daemon's beat socket (`PATH`), to find control.sock beside it", EnvVars: env("socket")},
	}
}

func formatFlag() cli.Flag {
	return &cli.StringFlag{Name: "format", Usage: "output `FORMAT`: text or json", Value: "text"}
}

// lookup returns the value of a flag given to the subcommand or, failing
// that, to varta-watch itself (varta-watch --socket X agents).
func lookup(c *cli.Context, name string) string {
	for _, x := range c.Lineage() {
		if x.Command != nil && x.IsSet(name) {
			return x.String(name)
		}
	}
	return ""
}

// controlPath resolves the control socket the way the daemon does.
func controlPath(c *cli.Context) (string, error) {
	if p := lookup(c, "control-socket"); p != "" {
		if p == controlOff {
			return "", fmt.Errorf("--control-socket off: the control socket is disabled")
		}
		return p, nil
	}
	if s := lookup(c, "socket"); s != "" {
		return filepath.Join(filepath.Dir(s), ControlSocketName), nil
	}
	return defaultControlSocket, nil
}

func parseFormat(c *cli.Context) (bool, error) {
	switch f := c.String("format"); f {
	case "text":
		return false, nil
	case "json":
		return true, nil
	default:
		return false, fmt.Errorf("--format %q: must be text or json", f)
	}
}

// runtimeError maps a client failure to exit status 1 with its message.
func runtimeError(what string, err error) error {
	var se *control.StatusError
	switch {
	case errors.As(err, &se) && se.Code == 403:
		return cli.Exit(fmt.Sprintf("%s: refused by the daemon (403 Forbidden): %s", what, se.Msg), exitcode.Failure)
	case errors.As(err, &se):
		return cli.Exit(fmt.Sprintf("%s: the daemon said %s", what, se), exitcode.Failure)
	}
	return cli.Exit(fmt.Sprintf("%s: %v", what, err), exitcode.Failure)
}

// clientCommand wraps a client action: it resolves the socket, checks the
// arguments and maps errors to exit codes.
func clientCommand(name, usage, argsUsage, desc string, nargs int, extra []cli.Flag,
	run func(c *cli.Context, cl *control.Client, args []string) error) *cli.Command {
	return &cli.Command{
		Name:        name,
		Usage:       usage,
		ArgsUsage:   argsUsage,
		Description: desc,
		Flags:       append(clientFlags(), extra...),
		Action: func(c *cli.Context) error {
			if c.NArg() != nargs {
				if nargs == 0 {
					return fmt.Errorf("%s: unexpected argument %q", name, c.Args().First())
				}
				return fmt.Errorf("%s: want %s", name, argsUsage)
			}
			path, err := controlPath(c)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			cl := control.NewClient(path)
			defer cl.Close()
			return run(c, cl, c.Args().Slice())
		},
	}
}

// isTerminal reports whether w is a terminal (for --watch).
var isTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

func commands() []*cli.Command {
	return []*cli.Command{
		clientCommand("agents", "list the daemon's agents", "",
			"Prints one row per tracked agent: pid, service, unit, state (ok, degraded, critical, stalled, snoozed, gave_up), "+
				"the age of its last beat, beats, stalls, recoveries, origin and the end of a snooze in force. --watch redraws "+
				"every second on a terminal (elsewhere it prints a new table every second) until interrupted.",
			0, []cli.Flag{
				&cli.StringFlag{Name: "service", Usage: "only agents of this `SERVICE`"},
				&cli.StringFlag{Name: "state", Usage: "only agents in this `STATE`: " + strings.Join(control.States, ", ")},
				formatFlag(),
				&cli.BoolFlag{Name: "watch", Usage: "redraw every second until interrupted"},
			}, agentsAction),
		clientCommand("services", "list the daemon's services", "",
			"Prints one row per service: its agents by state, the last recovery, the backoff window and gave-up time of its "+
				"restart budget, and the end and reason of a snooze in force.",
			0, []cli.Flag{formatFlag()}, servicesAction),
		clientCommand("snooze", "refuse recovery of a service, pid:N or all for a while", "TARGET",
			"While snoozed, stalls of the matching agents are still detected, written and counted (state snoozed), but "+
				"recovery is refused with reason snoozed in the audit log. TARGET is a service name, pid:N or all. --for takes "+
				"a duration (90s, 30m, 2h; at most 366 days) or forever, which must be written out. The snooze survives daemon "+
				"restarts (--state-dir) and ends by itself. Snoozing a target again replaces its snooze.",
			1, []cli.Flag{
				&cli.StringFlag{Name: "for", Usage: "how long: a `DURATION` (30m, 2h) or forever", Required: true},
				&cli.StringFlag{Name: "reason", Usage: "why (`TEXT`, written to the audit log)", Required: true},
				formatFlag(),
			}, snoozeAction),
		clientCommand("resume", "end the snooze of a service, pid:N or all", "TARGET",
			"Ends the snooze of TARGET (as written to snooze) at once; recovery of its agents is allowed again.",
			1, []cli.Flag{
				&cli.StringFlag{Name: "reason", Usage: "why (`TEXT`, written to the audit log)"},
				formatFlag(),
			}, resumeAction),
		clientCommand("reload", "reload the daemon's configuration (as SIGHUP) and print the result", "",
			"Does what SIGHUP does (reopen the events file, reload a policy file) and prints ok, or the error with exit "+
				"status 1 (the daemon then keeps its previous configuration).",
			0, []cli.Flag{formatFlag()}, reloadAction),
	}
}

func agentsAction(c *cli.Context, cl *control.Client, _ []string) error {
	asJSON, err := parseFormat(c)
	if err != nil {
		return err
	}
	state := c.String("state")
	if state != "" && !slices.Contains(control.States, state) {
		return fmt.Errorf("agents: --state %q: must be one of %s", state, strings.Join(control.States, ", "))
	}
	service := c.String("service")
	w := c.App.Writer
	once := func(ctx context.Context) error {
		r, err := cl.Agents(ctx, service, state)
		if err != nil {
			return runtimeError("agents", err)
		}
		if asJSON {
			return control.WriteJSON(w, r)
		}
		return control.RenderAgents(w, r.Agents, time.Local)
	}
	if !c.Bool("watch") {
		return once(c.Context)
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	tty := isTerminal(w)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if tty {
			io.WriteString(w, "\x1b[H\x1b[2J") // home, clear screen
		}
		fmt.Fprintf(w, "%s  varta-watch agents (every 1s, Ctrl-C to stop)\n", time.Now().Format(control.TimeLayout))
		if err := once(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if !tty {
			io.WriteString(w, "\n")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func servicesAction(c *cli.Context, cl *control.Client, _ []string) error {
	asJSON, err := parseFormat(c)
	if err != nil {
		return err
	}
	r, err := cl.Services(c.Context)
	if err != nil {
		return runtimeError("services", err)
	}
	if asJSON {
		return control.WriteJSON(c.App.Writer, r)
	}
	return control.RenderServices(c.App.Writer, r.Services, time.Local)
}

func snoozeAction(c *cli.Context, cl *control.Client, args []string) error {
	asJSON, err := parseFormat(c)
	if err != nil {
		return err
	}
	req := control.SnoozeRequest{Target: args[0], For: c.String("for"), Reason: c.String("reason")}
	// Check locally first, so that a typo is a usage error (exit 2).
	if _, err := control.ParseSnoozeRequest(req, 0, time.Now()); err != nil {
		return fmt.Errorf("snooze: %w", err)
	}
	s, err := cl.Snooze(c.Context, req)
	if err != nil {
		return runtimeError("snooze", err)
	}
	if asJSON {
		return control.WriteJSON(c.App.Writer, s)
	}
	return control.RenderSnooze(c.App.Writer, "snoozed", s, time.Local)
}

func resumeAction(c *cli.Context, cl *control.Client, args []string) error {
	asJSON, err := parseFormat(c)
	if err != nil {
		return err
	}
	t, err := snooze.ParseTarget(args[0])
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	reason := c.String("reason")
	if err := snooze.CheckReason(reason, false); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	r, err := cl.Resume(c.Context, control.ResumeRequest{Target: t.String(), Reason: reason})
	if err != nil {
		return runtimeError("resume", err)
	}
	if asJSON {
		return control.WriteJSON(c.App.Writer, r)
	}
	return control.RenderSnooze(c.App.Writer, "resumed (was snoozed)", r.Resumed, time.Local)
}

func reloadAction(c *cli.Context, cl *control.Client, _ []string) error {
	asJSON, err := parseFormat(c)
	if err != nil {
		return err
	}
	r, err := cl.Reload(c.Context)
	if err != nil {
		var se *control.StatusError
		if errors.As(err, &se) && se.Code == 422 {
			if asJSON {
				control.WriteJSON(c.App.Writer, control.ReloadReply{Result: "error", Error: se.Msg})
			}
			return cli.Exit("reload failed (the daemon keeps its previous configuration): "+se.Msg, exitcode.Failure)
		}
		return runtimeError("reload", err)
	}
	if asJSON {
		return control.WriteJSON(c.App.Writer, r)
	}
	_, err = fmt.Fprintln(c.App.Writer, "reload: ok")
	return err
}

// permute moves the positional arguments of a client subcommand behind its
// flags, so that "snooze web --for 30m" parses like "snooze --for 30m web"
// (the flag parser stops at the first positional argument). Arguments
// after "--" stay where they are.
func permute(a *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	// Find the subcommand: the first argument that is not a root flag or
	// its value.
	rootBool := boolFlags(a.Flags)
	i := 1
	for i < len(args) {
		s := args[i]
		if s == "--" || !strings.HasPrefix(s, "-") || s == "-" {
			break
		}
		name := strings.TrimLeft(s, "-")
		if strings.Contains(name, "=") || rootBool[name] {
			i++
		} else {
			i += 2
		}
	}
	if i >= len(args) {
		return args
	}
	cmd := a.Command(args[i])
	if cmd == nil {
		return args
	}
	subBool := boolFlags(cmd.Flags)
	out := append([]string(nil), args[:i+1]...)
	var pos []string
	for j := i + 1; j < len(args); j++ {
		s := args[j]
		switch {
		case s == "--":
			pos = append(pos, args[j:]...)
			j = len(args)
		case strings.HasPrefix(s, "-") && s != "-":
			out = append(out, s)
			name := strings.TrimLeft(s, "-")
			if !strings.Contains(name, "=") && !subBool[name] && j+1 < len(args) {
				out = append(out, args[j+1])
				j++
			}
		default:
			pos = append(pos, s)
		}
	}
	return append(out, pos...)
}

func boolFlags(fs []cli.Flag) map[string]bool {
	m := map[string]bool{}
	for _, f := range fs {
		if _, ok := f.(*cli.BoolFlag); ok {
			for _, n := range f.Names() {
				m[n] = true
			}
		}
	}
	for _, n := range []string{"help", "h", "version", "v"} {
		m[n] = true
	}
	return m
}
