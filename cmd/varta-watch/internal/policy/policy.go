package policy

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/budget"
	"github.com/varta-go/varta/cmd/varta-watch/internal/identity"
	"github.com/varta-go/varta/pkg/secretfile"
)

// Limits of a policy file.
const (
	MaxRules = 4096
	// MaxThresholds bounds the distinct thresholds (the rules' and the
	// command line's): the tracker keeps one deadline list per threshold
	// and looks at every list head to find the next stall.
	MaxThresholds = 16
	// MinThreshold is the smallest threshold, as for --threshold-ms.
	MinThreshold = 10 * time.Millisecond
	// MaxNameLen bounds a rule (service) name.
	MaxNameLen = 128
	// OverflowService is the service label of the series beyond
	// --prom-max-services; no rule may take the name.
	OverflowService = "other"
)

// Policy is a parsed policy file. It is immutable; a reload builds a new
// one.
type Policy struct {
	// Path is the file it was read from (for messages).
	Path string
	// Rules in file order; the first that matches an agent applies.
	Rules []Rule
}

// Match is a rule's selector; a field left empty matches everything, an
// agent field that is unknown ("-") matches no pattern.
type Match struct {
	Unit, Comm, Exe, Container string // glob patterns (path.Match)
	UID                        uint32
	HasUID                     bool
}

// Recovery is what a rule says about recovery.
type Recovery struct {
	// Set is false when the rule does not mention recovery: the
	// command-line recovery program applies.
	Set bool
	// None: stalls are surfaced, never recovered.
	None bool
	// Argv is the program and its arguments, with placeholders.
	Argv []string
}

// Rule is one entry of rules:.
type Rule struct {
	Name string
	Line int // where the rule starts in the file
	// Match selects the agents.
	Match Match
	// Threshold is the rule's silence threshold, 0 for the command line's.
	Threshold time.Duration
	Recovery  Recovery
	// Budget is the restart budget of the rule's service (zero: none).
	Budget budget.Config
}

// Error is a policy file error naming the file, the line and the key.
type Error struct {
	Path string
	Line int
	Key  string // e.g. rules[2].backoff.factor; empty for the whole file
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("policy file ")
	b.WriteString(strconv.Quote(e.Path))
	if e.Line > 0 {
		b.WriteString(": line ")
		b.WriteString(strconv.Itoa(e.Line))
	}
	if e.Key != "" {
		b.WriteString(": ")
		b.WriteString(e.Key)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// ErrInvalid is wrapped by every content error (Unwrap of *Error).
var ErrInvalid = errors.New("invalid policy file")

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *Error) Unwrap() error { return ErrInvalid }

// Load reads path under the secret-file rules (owned by the daemon's uid,
// no group/other write, no symlink: the file decides what the daemon
// executes) and parses it.
func Load(path string) (*Policy, error) {
	b, err := secretfile.Read(path)
	if err != nil {
		return nil, fmt.Errorf("policy file: %w", err)
	}
	return Parse(path, b)
}

// Rule returns rule i, or nil for -1.
func (p *Policy) Rule(i int) *Rule {
	if p == nil || i < 0 || i >= len(p.Rules) {
		return nil
	}
	return &p.Rules[i]
}

// Match returns the index of the first rule that matches info, or -1.
func (p *Policy) Match(info *identity.Info) int {
	if p == nil {
		return -1
	}
	for i := range p.Rules {
		if p.Rules[i].Match.matches(info) {
			return i
		}
	}
	return -1
}

// Thresholds returns the distinct rule thresholds (0 excluded), in rule
// order.
func (p *Policy) Thresholds() []time.Duration {
	var out []time.Duration
	if p == nil {
		return nil
	}
	for _, r := range p.Rules {
		if r.Threshold > 0 && !contains(out, r.Threshold) {
			out = append(out, r.Threshold)
		}
	}
	return out
}

func contains(ds []time.Duration, d time.Duration) bool {
	for _, x := range ds {
		if x == d {
			return true
		}
	}
	return false
}

// Service returns the service name of an agent: the rule's name, or the
// agent's own default (unit, else comm, else "-").
func (p *Policy) Service(info *identity.Info, rule int) string {
	if r := p.Rule(rule); r != nil {
		return r.Name
	}
	return info.DefaultService()
}

// Budget returns the budget configuration of service: the budget of the
// first rule with that name, or none.
func (p *Policy) Budget(service string) budget.Config {
	if p == nil {
		return budget.Config{}
	}
	for i := range p.Rules {
		if p.Rules[i].Name == service {
			return p.Rules[i].Budget
		}
	}
	return budget.Config{}
}

// HasService reports whether a rule is named service.
func (p *Policy) HasService(service string) bool {
	if p == nil {
		return false
	}
	for i := range p.Rules {
		if p.Rules[i].Name == service {
			return true
		}
	}
	return false
}

func (m *Match) matches(info *identity.Info) bool {
	if m.HasUID && (!info.HasUID || info.UID != m.UID) {
		return false
	}
	return glob(m.Unit, info.Unit) && glob(m.Comm, info.Comm) && glob(m.Exe, info.Exe) && glob(m.Container, info.Container)
}

// glob matches value against pattern; an empty pattern matches anything,
// an unknown value matches no pattern. Patterns were checked at parse time.
func glob(pattern, value string) bool {
	if pattern == "" {
		return true
	}
	if value == identity.Unknown || value == "" {
		return false
	}
	ok, _ := path.Match(pattern, value)
	return ok
}
