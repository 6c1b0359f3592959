package policy

import (
	"bytes"
	"fmt"
	"math"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/budget"
	"go.yaml.in/yaml/v3"
)

// Parse parses the YAML policy in b; name is the file's path, for errors.
// Decoding is strict: an unknown key, a duplicate key or rule name, a
// wrong type, a bad duration or glob, and an unknown placeholder are
// errors naming the file, the line and the key.
func Parse(name string, b []byte) (*Policy, error) {
	p := &parser{path: name}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, p.errf(nil, "", "the file is empty (write rules: [] for a policy without rules)")
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil {
		return nil, &Error{Path: name, Msg: "YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, p.errf(&extra, "", "more than one YAML document")
	}
	pol, err := p.file(&doc)
	if err != nil {
		return nil, err
	}
	pol.Path = name
	return pol, nil
}

type parser struct {
	path string
}

func (p *parser) errf(n *yaml.Node, key, format string, a ...any) *Error {
	e := &Error{Path: p.path, Key: key, Msg: fmt.Sprintf(format, a...)}
	if n != nil {
		e.Line = n.Line
	}
	return e
}

// deref follows an alias.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// fields walks a mapping node, rejecting unknown and duplicate keys, and
// calls set for each known key in file order.
func (p *parser) fields(n *yaml.Node, key string, known []string, set func(k string, v *yaml.Node) error) error {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		return p.errf(n, key, "want a mapping, got %s", kindName(n))
	}
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := deref(n.Content[i]), n.Content[i+1]
		if kn.Kind != yaml.ScalarNode {
			return p.errf(kn, key, "keys must be plain strings")
		}
		k := kn.Value
		sub := k
		if key != "" {
			sub = key + "." + k
		}
		if !slicesContains(known, k) {
			return p.errf(kn, sub, "unknown key (known: %s)", strings.Join(known, ", "))
		}
		if line, dup := seen[k]; dup {
			return p.errf(kn, sub, "duplicate key (first at line %d)", line)
		}
		seen[k] = kn.Line
		if err := set(k, vn); err != nil {
			return err
		}
	}
	return nil
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	case yaml.DocumentNode:
		return "a document"
	}
	return "an alias"
}

// defaults is the defaults: section.
type defaults struct {
	threshold time.Duration
	backoff   *budget.Backoff
	giveUp    *budget.GiveUp
}

func (p *parser) file(doc *yaml.Node) (*Policy, error) {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, p.errf(doc, "", "not a YAML document")
	}
	var d defaults
	var rulesNode *yaml.Node
	err := p.fields(doc.Content[0], "", []string{"defaults", "rules"}, func(k string, v *yaml.Node) error {
		switch k {
		case "defaults":
			return p.defaults(v, &d)
		case "rules":
			rulesNode = v
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if rulesNode == nil {
		return nil, p.errf(doc.Content[0], "rules", "missing (write rules: [] for a policy without rules)")
	}
	rn := deref(rulesNode)
	if rn.Kind != yaml.SequenceNode {
		return nil, p.errf(rn, "rules", "want a list of rules, got %s", kindName(rn))
	}
	if len(rn.Content) > MaxRules {
		return nil, p.errf(rn, "rules", "%d rules, at most %d", len(rn.Content), MaxRules)
	}
	pol := &Policy{Rules: make([]Rule, 0, len(rn.Content))}
	names := map[string]int{}
	for i, n := range rn.Content {
		key := fmt.Sprintf("rules[%d]", i)
		r, err := p.rule(n, key, &d)
		if err != nil {
			return nil, err
		}
		if line, dup := names[r.Name]; dup {
			return nil, p.errf(n, key+".name", "duplicate rule name %q (first at line %d)", r.Name, line)
		}
		names[r.Name] = r.Line
		pol.Rules = append(pol.Rules, r)
	}
	if th := pol.Thresholds(); len(th) > MaxThresholds-1 {
		return nil, p.errf(rn, "rules", "%d distinct thresholds, at most %d besides the command line's", len(th), MaxThresholds-1)
	}
	return pol, nil
}

func (p *parser) defaults(n *yaml.Node, d *defaults) error {
	return p.fields(n, "defaults", []string{"threshold", "backoff", "give_up"}, func(k string, v *yaml.Node) error {
		key := "defaults." + k
		switch k {
		case "threshold":
			th, err := p.threshold(v, key)
			d.threshold = th
			return err
		case "backoff":
			b, err := p.backoff(v, key)
			d.backoff = &b
			return err
		case "give_up":
			g, err := p.giveUp(v, key)
			d.giveUp = &g
			return err
		}
		return nil
	})
}

func (p *parser) rule(n *yaml.Node, key string, d *defaults) (Rule, error) {
	n = deref(n)
	r := Rule{Line: n.Line, Threshold: d.threshold}
	var haveName, haveMatch, haveBackoff, haveGiveUp bool
	err := p.fields(n, key, []string{"name", "match", "threshold", "recovery", "backoff", "give_up"}, func(k string, v *yaml.Node) error {
		sub := key + "." + k
		var err error
		switch k {
		case "name":
			haveName = true
			r.Name, err = p.name(v, sub)
		case "match":
			haveMatch = true
			r.Match, err = p.match(v, sub)
		case "threshold":
			r.Threshold, err = p.threshold(v, sub)
		case "recovery":
			r.Recovery, err = p.recovery(v, sub)
		case "backoff":
			haveBackoff = true
			r.Budget.Backoff, err = p.backoff(v, sub)
		case "give_up":
			haveGiveUp = true
			r.Budget.GiveUp, err = p.giveUp(v, sub)
		}
		return err
	})
	if err != nil {
		return r, err
	}
	switch {
	case !haveName:
		return r, p.errf(n, key+".name", "missing")
	case !haveMatch:
		return r, p.errf(n, key+".match", "missing (a rule that matches everything says so: match: {comm: \"*\"})")
	}
	if !haveBackoff && d.backoff != nil {
		r.Budget.Backoff = *d.backoff
	}
	if !haveGiveUp && d.giveUp != nil {
		r.Budget.GiveUp = *d.giveUp
	}
	return r, nil
}

func (p *parser) scalar(n *yaml.Node, key, want string) (*yaml.Node, error) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return nil, p.errf(n, key, "want %s, got %s", want, kindName(n))
	}
	return n, nil
}

func (p *parser) name(n *yaml.Node, key string) (string, error) {
	s, err := p.scalar(n, key, "a name")
	if err != nil {
		return "", err
	}
	v := s.Value
	switch {
	case len(v) > MaxNameLen:
		return "", p.errf(s, key, "%d bytes, at most %d", len(v), MaxNameLen)
	case v == OverflowService:
		return "", p.errf(s, key, "%q is reserved (the metrics' overflow service)", v)
	case v == "all" || strings.HasPrefix(v, "pid:"):
		return "", p.errf(s, key, "%q is reserved (a snooze target: all, pid:N)", v)
	case !validName(v):
		return "", p.errf(s, key, "%q: a name is letters, digits and . _ : @ -, not starting with - or .", v)
	}
	return v, nil
}

// validName: a service name is safe as a label value and as a {service}
// argument.
func validName(v string) bool {
	if v == "" || v[0] == '-' || v[0] == '.' {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '_', c == ':', c == '@', c == '-':
		default:
			return false
		}
	}
	return true
}

func (p *parser) match(n *yaml.Node, key string) (Match, error) {
	var m Match
	count := 0
	err := p.fields(n, key, []string{"unit", "comm", "exe", "uid", "container"}, func(k string, v *yaml.Node) error {
		sub := key + "." + k
		count++
		if k == "uid" {
			s, err := p.scalar(v, sub, "a uid")
			if err != nil {
				return err
			}
			u, err := strconv.ParseUint(s.Value, 10, 32)
			if err != nil || u == math.MaxUint32 {
				return p.errf(s, sub, "%q is not a uid (0 to %d)", s.Value, uint32(math.MaxUint32-1))
			}
			m.UID, m.HasUID = uint32(u), true
			return nil
		}
		s, err := p.scalar(v, sub, "a glob pattern")
		if err != nil {
			return err
		}
		if s.Value == "" {
			return p.errf(s, sub, "empty pattern (leave the key out to match everything)")
		}
		if _, err := path.Match(s.Value, ""); err != nil {
			return p.errf(s, sub, "bad glob pattern %q: %v", s.Value, err)
		}
		switch k {
		case "unit":
			m.Unit = s.Value
		case "comm":
			m.Comm = s.Value
		case "exe":
			m.Exe = s.Value
		case "container":
			m.Container = s.Value
		}
		return nil
	})
	if err == nil && count == 0 {
		return m, p.errf(n, key, "empty: name at least one of unit, comm, exe, uid, container")
	}
	return m, err
}

// duration parses a Go duration ("1500ms", "2s", "5m", "1h").
func (p *parser) duration(n *yaml.Node, key string) (time.Duration, *yaml.Node, error) {
	s, err := p.scalar(n, key, "a duration")
	if err != nil {
		return 0, nil, err
	}
	d, err := time.ParseDuration(s.Value)
	if err != nil {
		return 0, s, p.errf(s, key, "bad duration %q (write e.g. 1500ms, 2s, 5m, 1h)", s.Value)
	}
	if d <= 0 {
		return 0, s, p.errf(s, key, "duration %q must be positive", s.Value)
	}
	return d, s, nil
}

func (p *parser) threshold(n *yaml.Node, key string) (time.Duration, error) {
	d, s, err := p.duration(n, key)
	if err != nil {
		return 0, err
	}
	if d < MinThreshold || d%time.Millisecond != 0 {
		return 0, p.errf(s, key, "threshold %v: must be whole milliseconds, at least %v", d, MinThreshold)
	}
	return d, nil
}

// Backoff defaults (docs/services.md).
const (
	DefaultFactor     = 2
	DefaultResetAfter = 10 * time.Minute
)

func (p *parser) backoff(n *yaml.Node, key string) (budget.Backoff, error) {
	b := budget.Backoff{Factor: DefaultFactor, ResetAfter: DefaultResetAfter}
	var haveMax bool
	err := p.fields(n, key, []string{"initial", "max", "factor", "reset_after"}, func(k string, v *yaml.Node) error {
		sub := key + "." + k
		var err error
		switch k {
		case "initial":
			b.Initial, _, err = p.duration(v, sub)
		case "max":
			haveMax = true
			b.Max, _, err = p.duration(v, sub)
		case "reset_after":
			b.ResetAfter, _, err = p.duration(v, sub)
		case "factor":
			s, serr := p.scalar(v, sub, "a number")
			if serr != nil {
				return serr
			}
			f, perr := strconv.ParseFloat(s.Value, 64)
			if perr != nil || f < 1 || f > 1000 || math.IsNaN(f) {
				return p.errf(s, sub, "%q: want a number from 1 to 1000", s.Value)
			}
			b.Factor = f
		}
		return err
	})
	if err != nil {
		return b, err
	}
	if b.Initial == 0 {
		return b, p.errf(n, key+".initial", "missing")
	}
	if !haveMax {
		b.Max = b.Initial
		if b.Factor > 1 {
			b.Max = max(b.Initial, 5*time.Minute)
		}
	}
	if b.Max < b.Initial {
		return b, p.errf(n, key+".max", "%v is shorter than initial %v", b.Max, b.Initial)
	}
	return b, nil
}

func (p *parser) giveUp(n *yaml.Node, key string) (budget.GiveUp, error) {
	var g budget.GiveUp
	var haveRetry bool
	err := p.fields(n, key, []string{"after", "within", "retry_after"}, func(k string, v *yaml.Node) error {
		sub := key + "." + k
		var err error
		switch k {
		case "after":
			s, serr := p.scalar(v, sub, "a count")
			if serr != nil {
				return serr
			}
			a, perr := strconv.Atoi(s.Value)
			if perr != nil || a < 1 || a > 1000000 {
				return p.errf(s, sub, "%q: want a count from 1 to 1000000", s.Value)
			}
			g.After = a
		case "within":
			g.Within, _, err = p.duration(v, sub)
		case "retry_after":
			haveRetry = true
			if s := deref(v); s.Kind == yaml.ScalarNode && s.Value == "never" {
				g.Never = true
				return nil
			}
			g.RetryAfter, _, err = p.duration(v, sub)
		}
		return err
	})
	switch {
	case err != nil:
		return g, err
	case g.After == 0:
		return g, p.errf(n, key+".after", "missing")
	case g.Within == 0:
		return g, p.errf(n, key+".within", "missing")
	case !haveRetry:
		return g, p.errf(n, key+".retry_after", "missing (a duration, or never for a permanent give-up)")
	}
	return g, nil
}

func (p *parser) recovery(n *yaml.Node, key string) (Recovery, error) {
	n = deref(n)
	if n.Kind == yaml.ScalarNode && n.Value == "none" && n.Style == 0 {
		return Recovery{Set: true, None: true}, nil
	}
	if n.Kind != yaml.SequenceNode {
		return Recovery{}, p.errf(n, key, "want an argument list such as [\"/bin/systemctl\", \"restart\", \"{unit}\"] or none, got %s", kindName(n))
	}
	if len(n.Content) == 0 {
		return Recovery{}, p.errf(n, key, "empty argument list (write none to never recover)")
	}
	if len(n.Content) > 256 {
		return Recovery{}, p.errf(n, key, "%d arguments, at most 256", len(n.Content))
	}
	argv := make([]string, 0, len(n.Content))
	for i, a := range n.Content {
		sub := fmt.Sprintf("%s[%d]", key, i)
		s, err := p.scalar(a, sub, "a string")
		if err != nil {
			return Recovery{}, err
		}
		v := s.Value
		if strings.IndexByte(v, 0) >= 0 {
			return Recovery{}, p.errf(s, sub, "holds a NUL byte")
		}
		names, err := placeholders(v)
		if err != nil {
			return Recovery{}, p.errf(s, sub, "%v", err)
		}
		if i == 0 {
			switch {
			case v == "":
				return Recovery{}, p.errf(s, sub, "empty program")
			case len(names) > 0:
				return Recovery{}, p.errf(s, sub, "the program %q may not hold placeholders", v)
			}
		}
		argv = append(argv, v)
	}
	return Recovery{Set: true, Argv: argv}, nil
}

// Placeholder names in recovery arguments.
var placeholderNames = []string{"pid", "unit", "service", "comm", "uid", "container"}

// placeholders lists the {name} placeholders of arg; an unknown name
// between braces is an error. A brace that does not start a
// {identifier} is literal.
func placeholders(arg string) ([]string, error) {
	var out []string
	for i := 0; i < len(arg); i++ {
		if arg[i] != '{' {
			continue
		}
		j := i + 1
		for j < len(arg) && (arg[j] >= 'a' && arg[j] <= 'z' || arg[j] == '_') {
			j++
		}
		if j == i+1 || j >= len(arg) || arg[j] != '}' {
			continue
		}
		name := arg[i+1 : j]
		if !slicesContains(placeholderNames, name) {
			return nil, fmt.Errorf("unknown placeholder {%s} (known: {%s})", name, strings.Join(placeholderNames, "}, {"))
		}
		out = append(out, name)
		i = j
	}
	return out, nil
}
