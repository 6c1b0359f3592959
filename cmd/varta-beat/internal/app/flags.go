package app

import (
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/varta-go/varta/pkg/agent"
	"github.com/varta-go/varta/pkg/exitcode"
	"github.com/varta-go/varta/pkg/vlp"
)

// Defaults and environment.
const (
	DefaultSocket = agent.DefaultSocketPath
	EnvSocket     = agent.SocketEnv
)

const (
	flagSocket         = "socket"
	flagUDP            = "udp"
	flagKeyFile        = "key-file"
	flagMasterKeyFile  = "master-key-file"
	flagReconnectAfter = "reconnect-after"
	flagInterval       = "interval"
	flagStatus         = "status"
	flagPayload        = "payload"
	flagCount          = "count"
	flagVerbose        = "verbose"
	flagRequireOutput  = "require-output-within"
	flagAgents         = "agents"
	flagRate           = "rate"
	flagDuration       = "duration"
	flagPhase          = "phase"
)

// transportFlags are the flags every sending command has. urfave/cli flags
// hold state, so each command gets fresh instances.
func transportFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: flagSocket, Value: DefaultSocket, EnvVars: []string{EnvSocket}, Usage: "observer's Unix datagram socket `PATH`", TakesFile: true},
		&cli.StringFlag{Name: flagUDP, Usage: "send over UDP to `HOST:PORT` instead of the Unix socket"},
		&cli.StringFlag{Name: flagKeyFile, Usage: "secure UDP with the pre-shared key in `FILE` (64 hex digits; owner-only permissions)", TakesFile: true},
		&cli.StringFlag{Name: flagMasterKeyFile, Usage: "secure UDP with the per-agent key derived from the master key in `FILE`", TakesFile: true},
		&cli.IntFlag{Name: flagReconnectAfter, Value: 3, Usage: "reconnect after `N` consecutive drops and retry the beat (0: never)"},
	}
}

func beatFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: flagStatus, Value: "ok", Usage: "status of each beat (`STATUS`: ok, degraded or critical)"},
		&cli.Uint64Flag{Name: flagPayload, Value: 0, Usage: "application-defined 32-bit `VALUE` carried by each beat"},
	}
}

func intervalFlag() cli.Flag {
	return &cli.DurationFlag{Name: flagInterval, Value: 500 * time.Millisecond, Usage: "time between beats (`DURATION`, e.g. 500ms or 2s)"}
}

func verboseFlag() cli.Flag {
	return &cli.BoolFlag{Name: flagVerbose, Usage: "print every beat, not only the ones that were not sent"}
}

func concat(lists ...[]cli.Flag) []cli.Flag {
	var out []cli.Flag
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// agentOptions turns the transport flags into agent.Options. --udp wins
// over a socket path that only came from the environment; --udp with an
// explicit --socket is a usage error.
func agentOptions(c *cli.Context) (agent.Options, error) {
	o := agent.Options{ReconnectAfter: c.Int(flagReconnectAfter)}
	if o.ReconnectAfter < 0 {
		return o, fmt.Errorf("--%s must not be negative", flagReconnectAfter)
	}
	udp := c.String(flagUDP)
	keyFile, masterFile := c.String(flagKeyFile), c.String(flagMasterKeyFile)
	if udp == "" {
		if keyFile != "" || masterFile != "" {
			return o, fmt.Errorf("--%s and --%s need --%s (secure UDP)", flagKeyFile, flagMasterKeyFile, flagUDP)
		}
		o.SocketPath = c.String(flagSocket)
		if o.SocketPath == "" {
			return o, fmt.Errorf("--%s must not be empty", flagSocket)
		}
		return o, nil
	}
	if c.IsSet(flagSocket) {
		if env, ok := os.LookupEnv(EnvSocket); !ok || env != c.String(flagSocket) {
			return o, fmt.Errorf("--%s and --%s are mutually exclusive", flagSocket, flagUDP)
		}
	}
	if keyFile != "" && masterFile != "" {
		return o, fmt.Errorf("--%s and --%s are mutually exclusive", flagKeyFile, flagMasterKeyFile)
	}
	o.UDPAddr = udp
	if err := loadKeys(&o, keyFile, masterFile); err != nil {
		return o, cli.Exit(err.Error(), exitcode.Failure)
	}
	return o, nil
}

// beatOptions parses the transport flags, then --status and --payload: the
// setup of every command that beats repeatedly (run, exec).
func beatOptions(c *cli.Context) (agent.Options, vlp.Status, uint32, error) {
	o, err := agentOptions(c)
	if err != nil {
		return o, 0, 0, err
	}
	st, payload, err := beatValues(c)
	return o, st, payload, err
}

// beatValues parses --status and --payload.
func beatValues(c *cli.Context) (vlp.Status, uint32, error) {
	name := c.String(flagStatus)
	st, ok := vlp.ParseStatus(name)
	if !ok {
		if name == "stall" {
			return 0, 0, errors.New("--status stall: Stall is observer-only and is never sent")
		}
		return 0, 0, fmt.Errorf("--status %q: want ok, degraded or critical", name)
	}
	p := c.Uint64(flagPayload)
	if p > math.MaxUint32 {
		return 0, 0, fmt.Errorf("--payload %d does not fit in 32 bits", p)
	}
	return st, uint32(p), nil
}

// connectError maps a connect failure to exit code 1 (failure) with the
// error's text.
func connectError(err error) error { return cli.Exit(err.Error(), exitcode.Failure) }
