package app

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/varta-go/varta/cmd/varta-beat/internal/beatloop"
	"github.com/varta-go/varta/cmd/varta-beat/internal/keygen"
	"github.com/varta-go/varta/cmd/varta-beat/internal/load"
	"github.com/varta-go/varta/cmd/varta-beat/internal/supervise"
	"github.com/varta-go/varta/pkg/agent"
	"github.com/varta-go/varta/pkg/exitcode"
)

const prefix = Name + ": "

func runCommand() *cli.Command {
	return &cli.Command{
		Name:  "run",
		Usage: "beat every --interval until SIGINT/SIGTERM (then send a terminal frame and exit 0) or --count beats",
		Description: `Beats start at once and follow an absolute schedule. Beats that are not
sent are reported on stderr (at most one line per second). When the
observer is absent at start, run fails (exit 1); once running, drops are
reported and the socket is re-connected after --reconnect-after drops.
Reaching --count ends without a terminal frame.`,
		Flags: concat(transportFlags(), beatFlags(), []cli.Flag{
			intervalFlag(),
			&cli.IntFlag{Name: flagCount, Usage: "stop after `N` beats (0: until a signal)"},
			verboseFlag(),
		}),
		Action: func(c *cli.Context) error {
			o, st, payload, err := beatOptions(c)
			if err != nil {
				return err
			}
			if c.Int(flagCount) < 0 {
				return fmt.Errorf("--%s must not be negative", flagCount)
			}
			a, err := agent.Connect(o)
			if err != nil {
				return connectError(err)
			}
			defer a.Close()
			ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return beatloop.Run(ctx, a, beatloop.Options{
				Interval: c.Duration(flagInterval),
				Status:   st,
				Payload:  payload,
				Count:    c.Int(flagCount),
				Verbose:  c.Bool(flagVerbose),
				Out:      c.App.Writer,
				Errs:     c.App.ErrWriter,
				Prefix:   prefix,
			})
		},
	}
}

// sendOne connects and sends one frame, mapping the outcome to the exit
// codes of once/terminal: 0 sent, 3 dropped (also when no observer is
// listening at connect: a drop is normal), 1 failed.
func sendOne(c *cli.Context, send func(a *agent.Agent) agent.Result) error {
	o, err := agentOptions(c)
	if err != nil {
		return err
	}
	a, err := agent.Connect(o)
	if err != nil {
		if errors.Is(err, agent.ErrNoObserver) {
			return cli.Exit(fmt.Sprintf("dropped: %v: %v", agent.NoObserver, err), exitcode.Dropped)
		}
		return connectError(err)
	}
	defer a.Close()
	r := send(a)
	switch r.Outcome {
	case agent.Sent:
		return nil
	case agent.Dropped:
		return cli.Exit(r.String(), exitcode.Dropped)
	}
	return cli.Exit(r.String(), exitcode.Failure)
}

func onceCommand() *cli.Command {
	return &cli.Command{
		Name:  "once",
		Usage: "send one beat; exit 0 sent, 3 dropped (reason on stderr), 1 failed",
		Description: `No observer listening at the socket counts as a drop (NoObserver, exit 3),
not a failure: the observer may be restarting.`,
		Flags: concat(transportFlags(), beatFlags()),
		Action: func(c *cli.Context) error {
			st, payload, err := beatValues(c)
			if err != nil {
				return err
			}
			return sendOne(c, func(a *agent.Agent) agent.Result { return a.Beat(st, payload) })
		},
	}
}

func terminalCommand() *cli.Command {
	return &cli.Command{
		Name:  "terminal",
		Usage: "send one terminal (dying-gasp) frame; exit codes as for once",
		Flags: transportFlags(),
		Action: func(c *cli.Context) error {
			return sendOne(c, func(a *agent.Agent) agent.Result { return beatloop.SendTerminal(a, beatloop.TerminalPatience) })
		},
	}
}

func execCommand() *cli.Command {
	return &cli.Command{
		Name:      "exec",
		Usage:     "run a command and beat on its behalf while it lives; exit with its code",
		ArgsUsage: "-- CMD [ARGS...]",
		Description: `The command runs without a shell, with varta-beat's stdin, stdout and
stderr. Beats (carrying varta-beat's pid) continue while it lives; with
--require-output-within only while it keeps writing to stdout or stderr,
so a hung job stops the beats and the observer sees a stall at most
--require-output-within plus the observer's --threshold-ms after its last
output. Without --require-output-within a job that hangs but stays alive
keeps beating and is never reported; only its exit is seen. SIGINT,
SIGTERM, SIGHUP and SIGQUIT are forwarded to the command. When it exits
non-zero or by a signal, a terminal frame is sent. varta-beat exits with
the command's exit code, or 128+N when signal N killed it. The command
runs even when no observer is listening; connecting is retried every
--interval.`,
		Flags: concat(transportFlags(), beatFlags(), []cli.Flag{
			intervalFlag(),
			&cli.DurationFlag{Name: flagRequireOutput, Usage: "beat only while the command wrote to stdout/stderr within `DUR` (0: off)"},
			verboseFlag(),
		}),
		Action: func(c *cli.Context) error {
			argv := c.Args().Slice()
			if len(argv) == 0 {
				return errors.New("exec: no command given (usage: varta-beat exec [OPTIONS] -- CMD [ARGS...])")
			}
			o, st, payload, err := beatOptions(c)
			if err != nil {
				return err
			}
			if c.Duration(flagRequireOutput) < 0 {
				return fmt.Errorf("--%s must not be negative", flagRequireOutput)
			}
			sigs := make(chan os.Signal, 4)
			signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
			defer signal.Stop(sigs)
			res, err := supervise.Run(c.Context, supervise.Options{
				Argv:                argv,
				Interval:            c.Duration(flagInterval),
				Status:              st,
				Payload:             payload,
				RequireOutputWithin: c.Duration(flagRequireOutput),
				Connect:             func() (*agent.Agent, error) { return agent.Connect(o) },
				Signals:             sigs,
				Stdin:               os.Stdin,
				Stdout:              c.App.Writer,
				Stderr:              c.App.ErrWriter,
				Errs:                c.App.ErrWriter,
				Prefix:              prefix,
				Verbose:             c.Bool(flagVerbose),
			})
			if err != nil {
				return cli.Exit(err.Error(), exitcode.Failure)
			}
			if res.ExitCode != 0 {
				return cli.Exit("", res.ExitCode)
			}
			return nil
		},
	}
}

// loadAgentCommand is the hidden child of "load" over a Unix socket.
const loadAgentName = "load-agent"

func loadCommand() *cli.Command {
	return &cli.Command{
		Name:  "load",
		Usage: "generate beats from many agents for benchmarks and soak tests",
		Description: `Over a Unix socket every agent is a real child process (a re-exec of
varta-beat with GOMAXPROCS=1 and the garbage collector off under a small
memory limit), because the observer checks the kernel-reported sender pid;
the report includes the children's peak RSS. Over UDP one process sends for
all agents with distinct synthetic pids drawn from [2, pid_max). The report
gives the sent and dropped totals and the achieved rate. --rate is per
agent; beats are spread evenly over each interval.`,
		Flags: concat(transportFlags(), []cli.Flag{
			&cli.IntFlag{Name: flagAgents, Value: 1, Usage: "number of agents `N`"},
			&cli.Float64Flag{Name: flagRate, Value: 1, Usage: "beats per second per agent (`RATE`, may be fractional)"},
			&cli.DurationFlag{Name: flagDuration, Value: 10e9, Usage: "length of the run (`DURATION`)"},
		}),
		Action: func(c *cli.Context) error {
			o, err := agentOptions(c)
			if err != nil {
				return err
			}
			lo := load.Options{
				Agents:      c.Int(flagAgents),
				Rate:        c.Float64(flagRate),
				Duration:    c.Duration(flagDuration),
				Target:      o,
				ChildStderr: c.App.ErrWriter,
				PidMax:      pidMax(),
			}
			if o.SocketPath != "" {
				exe, err := os.Executable()
				if err != nil {
					return cli.Exit(fmt.Sprintf("load: find own executable: %v", err), exitcode.Failure)
				}
				lo.ChildCommand = []string{exe, loadAgentName}
				lo.ChildEnv = append(os.Environ(), "GOMAXPROCS=1", "GOGC=off", "GOMEMLIMIT=32MiB")
			}
			ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			rep, err := load.Run(ctx, lo)
			if errors.Is(err, load.ErrOptions) {
				return err
			}
			if werr := rep.WriteText(c.App.Writer); werr != nil && err == nil {
				err = werr
			}
			if err != nil {
				return cli.Exit(err.Error(), exitcode.Failure)
			}
			if rep.ChildErrors > 0 {
				return cli.Exit(fmt.Sprintf("load: %d of %d agent processes failed", rep.ChildErrors, rep.Agents), exitcode.Failure)
			}
			return nil
		},
	}
}

func loadAgentCommand() *cli.Command {
	return &cli.Command{
		Name:   loadAgentName,
		Hidden: true,
		Usage:  "one agent process of load (internal)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: flagSocket, Required: true},
			&cli.Float64Flag{Name: flagRate, Value: 1},
			&cli.DurationFlag{Name: flagDuration, Value: 10e9},
			&cli.DurationFlag{Name: flagPhase},
		},
		Action: func(c *cli.Context) error {
			err := load.RunChild(load.ChildOptions{
				SocketPath: c.String(flagSocket),
				Rate:       c.Float64(flagRate),
				Duration:   c.Duration(flagDuration),
				Phase:      c.Duration(flagPhase),
			}, c.App.Writer)
			if err != nil {
				return cli.Exit(err.Error(), exitcode.Failure)
			}
			return nil
		},
	}
}

// pidMax reads the kernel's pid limit; other systems use the largest
// common default.
func pidMax() int {
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 2 {
			return n
		}
	}
	return 99999
}

func keygenCommand() *cli.Command {
	return &cli.Command{
		Name:      "keygen",
		Usage:     "write a new random key (64 hex digits) to PATH with mode 0600; never overwrites",
		ArgsUsage: "PATH",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return errors.New("keygen: exactly one PATH is required")
			}
			if err := keygen.Write(c.Args().First()); err != nil {
				return cli.Exit(err.Error(), exitcode.Failure)
			}
			return nil
		},
	}
}
