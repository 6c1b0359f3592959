package app

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/varta-go/varta/cmd/varta-audit/internal/report"
	"github.com/varta-go/varta/pkg/audit"
)

// Flags shared by several commands; each command gets its own instances
// (cli flags record their parse state).
func formatFlag() cli.Flag {
	return &cli.StringFlag{Name: "format", Value: "text", Usage: "output `FORMAT`: text or json"}
}

func utcFlag() cli.Flag {
	return &cli.BoolFlag{Name: "utc", Usage: "print times in UTC instead of the local time zone"}
}

func noProgressFlag() cli.Flag {
	return &cli.BoolFlag{Name: "no-progress", Usage: "never show a progress bar (one is shown on a terminal for inputs over 64 MiB)"}
}

// pathArg returns the single PATH argument.
func pathArg(c *cli.Context) (string, error) {
	switch c.NArg() {
	case 1:
		return c.Args().First(), nil
	case 0:
		return "", fmt.Errorf("%s: missing PATH (the audit file given to varta-watch --recovery-audit-file)", c.Command.Name)
	}
	for _, a := range c.Args().Slice()[1:] {
		if strings.HasPrefix(a, "-") {
			return "", fmt.Errorf("%s: %q after PATH: options go before PATH (%s %s [options] PATH)", c.Command.Name, a, Name, c.Command.Name)
		}
	}
	return "", fmt.Errorf("%s: want one PATH, got %d arguments", c.Command.Name, c.NArg())
}

// pathAndFormat returns the PATH argument and the --format value that
// every command takes.
func pathAndFormat(c *cli.Context) (string, report.Format, error) {
	path, err := pathArg(c)
	if err != nil {
		return "", 0, err
	}
	f, err := report.ParseFormat(c.String("format"))
	if err != nil {
		return "", f, fmt.Errorf("%s: --format: %w", c.Command.Name, err)
	}
	return path, f, nil
}

func locationOf(c *cli.Context) *time.Location {
	if c.Bool("utc") {
		return time.UTC
	}
	return time.Local
}

var hexToken = regexp.MustCompile(`(?i)\b[0-9a-f]{64}\b`)

// anchorOf reads --anchor or --anchor-file. An anchor file may hold the
// bare hash, the output of "varta-audit head" (text or JSON) or any text
// with exactly one 64-digit hex value.
func anchorOf(c *cli.Context) (*audit.Hash, error) {
	hexArg, file := c.String("anchor"), c.String("anchor-file")
	switch {
	case hexArg != "" && file != "":
		return nil, fmt.Errorf("verify: --anchor and --anchor-file are mutually exclusive")
	case hexArg != "":
		h, err := audit.ParseHash(strings.TrimSpace(hexArg))
		if err != nil {
			return nil, fmt.Errorf("verify: --anchor: %w", err)
		}
		return &h, nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, ioExit("verify", fmt.Errorf("--anchor-file: %w", err))
		}
		found := map[string]bool{}
		for _, m := range hexToken.FindAllString(string(b), -1) {
			found[strings.ToLower(m)] = true
		}
		if len(found) != 1 {
			return nil, fmt.Errorf("verify: --anchor-file %s: want exactly one 64-digit hex chain value, found %d", file, len(found))
		}
		for m := range found {
			h, err := audit.ParseHash(m)
			return &h, err
		}
	}
	return nil, nil
}

// filter selects records for show.
type filter struct {
	kinds        map[audit.Kind]bool // nil: all
	pid          uint32
	hasPid       bool
	since, until time.Time // zero: unbounded
}

func (f *filter) match(r *audit.Record) bool {
	if f.kinds != nil && !f.kinds[r.Kind] {
		return false
	}
	if f.hasPid {
		if pid, ok := r.AgentPid(); !ok || pid != f.pid {
			return false
		}
	}
	t := r.WallclockMs()
	if !f.since.IsZero() && t < f.since.UnixMilli() {
		return false
	}
	if !f.until.IsZero() && t > f.until.UnixMilli() {
		return false
	}
	return true
}

func filterOf(c *cli.Context, now time.Time) (filter, error) {
	var f filter
	for _, v := range c.StringSlice("kind") {
		for _, k := range strings.Split(v, ",") {
			kind, ok := audit.ParseKind(strings.TrimSpace(k))
			if !ok {
				return f, fmt.Errorf("show: --kind %q: want boot, spawn, complete, refused or control", k)
			}
			if f.kinds == nil {
				f.kinds = map[audit.Kind]bool{}
			}
			f.kinds[kind] = true
		}
	}
	if s := c.String("pid"); s != "" {
		v, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return f, fmt.Errorf("show: --pid %q: want an agent pid", s)
		}
		f.pid, f.hasPid = uint32(v), true
	}
	var err error
	if f.since, err = parseWhen(c.String("since"), now); err != nil {
		return f, fmt.Errorf("show: --since: %w", err)
	}
	if f.until, err = parseWhen(c.String("until"), now); err != nil {
		return f, fmt.Errorf("show: --until: %w", err)
	}
	return f, nil
}

// parseWhen accepts an RFC 3339 time, or a duration meaning that long ago.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time (2024-05-01T12:00:00Z) or a duration ago (90m, 24h)", s)
}
