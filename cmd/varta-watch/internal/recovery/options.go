package recovery

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Defaults and bounds (docs/recovery.md §1 to §4).
const (
	DefaultCaptureBytes        = 4096
	MaxCaptureBytes            = 1 << 20
	MinTimeout                 = 100 * time.Millisecond
	DefaultDebounce            = time.Second
	DefaultLedgerCapacity      = 4096
	DefaultOutstandingCapacity = 4096
	MaxOutstandingCapacity     = 1 << 20
	// DefaultSpawnRate and DefaultSpawnBurst: the spawn token bucket
	// (spawn attempts per second of the stall clock, and its size).
	DefaultSpawnRate           = 16
	DefaultSpawnBurst          = 16
	DefaultMaxReapsPerTick     = 64
	DefaultMaxDecisionsPerTick = 256
	// DefaultPath is the child's PATH unless an Env entry (or, with
	// InheritEnv, the daemon's environment) sets another one.
	DefaultPath = "/usr/bin:/bin"
	// PruneFactor: ledger entries older than PruneFactor × Debounce are
	// dropped.
	PruneFactor = 10
)

// Sentinel errors.
var (
	// ErrEmptyCommand: the recovery command has no program.
	ErrEmptyCommand = errors.New("recovery command is empty")
	// ErrInvalidCommand: the program or an argument cannot be passed to
	// execve (it holds a NUL byte).
	ErrInvalidCommand = errors.New("invalid recovery command")
	// ErrInvalidEnv: a --recovery-env entry is malformed.
	ErrInvalidEnv = errors.New("invalid recovery environment entry")
	// ErrInvalidOptions: an Options value is out of bounds.
	ErrInvalidOptions = errors.New("invalid recovery options")
	// ErrNotFound: the program was not found in the child's PATH.
	ErrNotFound = errors.New("recovery program not found in the child's PATH")
)

// Options configures a Runner. Zero values of the numeric fields mean the
// default; negative values are errors.
type Options struct {
	Program string   // first token of --recovery-exec (or of the file)
	Args    []string // remaining tokens; every "{pid}" is substituted
	Source  string   // "inline" (the default) or the command file's path
	// Env holds the --recovery-env KEY=VALUE entries in order; a later
	// KEY overrides an earlier one (PATH included).
	Env []string
	// InheritEnv starts the child's environment from BaseEnv instead of
	// PATH=/usr/bin:/bin alone.
	InheritEnv bool
	// BaseEnv is the daemon's environment, used only with InheritEnv.
	BaseEnv      []string
	CaptureStdio bool
	CaptureBytes int           // default 4096, 1 … 1,048,576
	Timeout      time.Duration // 0 = never; else ≥ 100 ms
	// Debounce is the window in which the same process is not recovered
	// again (default 1 s). DebounceOff turns the window off
	// (--recovery-debounce-ms 0): Debounce must then be 0, and only a
	// child still running for the process (outstanding_in_flight) holds
	// back its next recovery.
	Debounce    time.Duration
	DebounceOff bool
	// LedgerCapacity bounds the debounce ledger (default 4096).
	LedgerCapacity int
	// OutstandingCapacity bounds the table of running children; the
	// observer passes its tracker capacity (default 4096). The queue of
	// submitted, undecided stalls holds twice as many.
	OutstandingCapacity int
	AllowCrossNamespace bool
	// SpawnRate (attempts per second, default 16) and SpawnBurst (default
	// 16) are the spawn token bucket: every spawn attempt, failed ones
	// included, takes a token; stalls that find the bucket empty wait in
	// the queue (deferred) and are verified again when a token is there.
	// The bucket refills on the observer clock, however often Tick runs.
	SpawnRate       float64
	SpawnBurst      int
	MaxReapsPerTick int // default 64
	// MaxDecisionsPerTick bounds the stalls decided in one tick, spawned
	// or not (default 256, the size of the audit queue): every decision
	// is an audit record and a Verify call.
	MaxDecisionsPerTick int
	// Logger receives spawn and reap failures (rate-limited). nil = none.
	Logger *slog.Logger
	// Planner, when set, plans every stall that passes the gates (the
	// policy file); Program may then be empty, and a stall the planner
	// gives no argument list is dropped without a record.
	Planner Planner
}

// ParseCommand splits a --recovery-exec value (or the trimmed contents of
// a --recovery-exec-file) on whitespace. There is no quoting and no
// escaping: the first token is the program, the rest are arguments.
func ParseCommand(s string) (program string, args []string, err error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return "", nil, ErrEmptyCommand
	}
	for i, tok := range f {
		if strings.IndexByte(tok, 0) >= 0 {
			return "", nil, fmt.Errorf("%w: token %d holds a NUL byte", ErrInvalidCommand, i)
		}
	}
	return f[0], f[1:], nil
}

// ValidateEnv checks --recovery-env entries: each is split at its first
// '='; a missing '=', an empty key or a NUL byte anywhere is an error that
// names the entry by position and key (never by value, which may be a
// secret).
func ValidateEnv(kv []string) error {
	for i, e := range kv {
		k, _, ok := strings.Cut(e, "=")
		switch {
		case !ok:
			return fmt.Errorf("%w: entry %d (%q) has no '='", ErrInvalidEnv, i+1, k)
		case k == "":
			return fmt.Errorf("%w: entry %d has an empty key", ErrInvalidEnv, i+1)
		case strings.IndexByte(k, 0) >= 0:
			return fmt.Errorf("%w: entry %d has a NUL byte in its key", ErrInvalidEnv, i+1)
		case strings.IndexByte(e, 0) >= 0:
			return fmt.Errorf("%w: entry %d (%q) has a NUL byte in its value", ErrInvalidEnv, i+1, k)
		}
	}
	return nil
}

// normalize fills defaults and checks bounds.
func (o Options) normalize() (Options, error) {
	bad := func(format string, a ...any) (Options, error) {
		return o, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, a...)...)
	}
	if o.Program == "" && o.Planner == nil {
		return o, ErrEmptyCommand
	}
	if strings.IndexByte(o.Program, 0) >= 0 {
		return o, fmt.Errorf("%w: the program holds a NUL byte", ErrInvalidCommand)
	}
	for i, a := range o.Args {
		if strings.IndexByte(a, 0) >= 0 {
			return o, fmt.Errorf("%w: argument %d holds a NUL byte", ErrInvalidCommand, i+1)
		}
	}
	if o.Source == "" {
		o.Source = "inline"
	}
	if err := ValidateEnv(o.Env); err != nil {
		return o, err
	}
	switch {
	case o.CaptureBytes == 0:
		o.CaptureBytes = DefaultCaptureBytes
	case o.CaptureBytes < 1 || o.CaptureBytes > MaxCaptureBytes:
		return bad("capture bytes %d outside 1 … %d", o.CaptureBytes, MaxCaptureBytes)
	}
	if o.Timeout < 0 || (o.Timeout > 0 && o.Timeout < MinTimeout) {
		return bad("timeout %v: must be 0 (never) or at least %v", o.Timeout, MinTimeout)
	}
	switch {
	case o.Debounce < 0:
		return bad("negative debounce %v", o.Debounce)
	case o.DebounceOff && o.Debounce != 0:
		return bad("debounce %v with the debounce window off", o.Debounce)
	case o.Debounce == 0 && !o.DebounceOff:
		o.Debounce = DefaultDebounce
	}
	switch {
	case o.SpawnRate == 0:
		o.SpawnRate = DefaultSpawnRate
	case !(o.SpawnRate > 0) || math.IsInf(o.SpawnRate, 0):
		return bad("spawn rate %v: must be a positive number", o.SpawnRate)
	}
	defaults := []struct {
		name string
		v    *int
		def  int
		max  int
	}{
		{"ledger capacity", &o.LedgerCapacity, DefaultLedgerCapacity, 0},
		{"outstanding capacity", &o.OutstandingCapacity, DefaultOutstandingCapacity, MaxOutstandingCapacity},
		{"spawn burst", &o.SpawnBurst, DefaultSpawnBurst, 0},
		{"reaps per tick", &o.MaxReapsPerTick, DefaultMaxReapsPerTick, 0},
		{"decisions per tick", &o.MaxDecisionsPerTick, DefaultMaxDecisionsPerTick, 0},
	}
	for _, d := range defaults {
		switch {
		case *d.v == 0:
			*d.v = d.def
		case *d.v < 0:
			return bad("negative %s %d", d.name, *d.v)
		case d.max > 0 && *d.v > d.max:
			return bad("%s %d above %d", d.name, *d.v, d.max)
		}
	}
	return o, nil
}

// childEnv builds the child's environment: PATH=/usr/bin:/bin (or, with
// InheritEnv, the well-formed entries of BaseEnv) with the Env entries
// applied on top in order. Each key appears once, at the position of its
// first occurrence, with the value of its last.
func childEnv(o Options) []string {
	var out []string
	pos := make(map[string]int)
	set := func(kv string) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := pos[k]; ok {
			out[i] = kv
			return
		}
		pos[k] = len(out)
		out = append(out, kv)
	}
	if o.InheritEnv {
		for _, kv := range o.BaseEnv {
			k, _, ok := strings.Cut(kv, "=")
			if !ok || k == "" || strings.IndexByte(kv, 0) >= 0 {
				continue // cannot be passed to execve as a variable
			}
			set(kv)
		}
	} else {
		set("PATH=" + DefaultPath)
	}
	for _, kv := range o.Env {
		set(kv)
	}
	return out
}

// envPath returns the PATH the child will see, or DefaultPath if its
// environment has none.
func envPath(env []string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			return v
		}
	}
	return DefaultPath
}

// lookPath resolves program the way execvp in the child would, but only
// through absolute PATH entries: a name with a slash is used as is; a bare
// name is searched in path (the child's PATH, not the daemon's). Empty and
// relative PATH entries are skipped so that the daemon's working directory
// never decides what runs.
func lookPath(program, path string) (string, error) {
	if strings.Contains(program, "/") {
		return program, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, program)
		fi, err := os.Stat(p)
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 || unix.Access(p, unix.X_OK) != nil {
			continue // like execvp: keep searching past what we may not run
		}
		return p, nil
	}
	return "", fmt.Errorf("%w: %q (PATH=%q)", ErrNotFound, program, path)
}
