package audit

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"strconv"
)

// ParseError says which line and column of an audit file is malformed.
// It matches ErrMalformed and its category sentinel (ErrColumnCount,
// ErrUnknownKind or ErrBadField) with errors.Is.
type ParseError struct {
	Line   int    // 1-based line in its file; 0 when parsed without a file
	Column int    // 0-based column as numbered in docs/audit.md; -1 for the whole line
	Field  string // the column's name, empty for the whole line
	Msg    string
	Err    error // ErrColumnCount, ErrUnknownKind or ErrBadField
}

func (e *ParseError) Error() string {
	var b []byte
	if e.Line > 0 {
		b = append(b, "line "...)
		b = strconv.AppendInt(b, int64(e.Line), 10)
		b = append(b, ", "...)
	}
	if e.Column >= 0 {
		b = append(b, "column "...)
		b = strconv.AppendInt(b, int64(e.Column), 10)
		if e.Field != "" {
			b = append(b, " ("...)
			b = append(b, e.Field...)
			b = append(b, ')')
		}
		b = append(b, ": "...)
	}
	b = append(b, e.Msg...)
	return string(b)
}

// Unwrap returns the category sentinel.
func (e *ParseError) Unwrap() error { return e.Err }

// Is makes every ParseError match ErrMalformed.
func (e *ParseError) Is(target error) bool { return target == ErrMalformed }

var columnNames = [...][]string{
	KindBoot:     {"seq", "wallclock_ms", "observer_ns", "kind", "daemon_pid", "prev_chain", "reason", "chain"},
	KindSpawn:    {"seq", "wallclock_ms", "observer_ns", "kind", "agent_pid", "child_pid", "mode", "program", "source", "template_len", "chain"},
	KindComplete: {"seq", "wallclock_ms", "observer_ns", "kind", "agent_pid", "child_pid", "outcome", "exit_code", "signal", "duration_ns", "stdout_len", "stderr_len", "truncated", "chain"},
	KindRefused:  {"seq", "wallclock_ms", "observer_ns", "kind", "agent_pid", "reason", "chain"},
	KindControl:  {"seq", "wallclock_ms", "observer_ns", "kind", "uid", "action", "target", "until", "reason", "chain"},
}

// splitLine splits line on TAB into cols and returns the column count; a
// count above maxColumns means "too many" (the rest is not split). It scans
// eight bytes at a time.
func splitLine(line []byte, cols *[maxColumns + 1][]byte) int {
	const ones, highs, tabs = 0x0101010101010101, 0x8080808080808080, 0x0909090909090909
	n, start, i := 0, 0, 0
	for ; i+8 <= len(line); i += 8 {
		w := binary.LittleEndian.Uint64(line[i:]) ^ tabs
		m := (w - ones) &^ w & highs // a set high bit marks a candidate TAB
		for m != 0 {
			j := i + bits.TrailingZeros64(m)>>3
			m &= m - 1
			if line[j] != '\t' { // a borrow can flag the byte after a TAB
				continue
			}
			cols[n] = line[start:j:j]
			n++
			start = j + 1
			if n == maxColumns {
				cols[n] = line[start:]
				return n + 1
			}
		}
	}
	for ; i < len(line); i++ {
		if line[i] != '\t' {
			continue
		}
		cols[n] = line[start:i:i]
		n++
		start = i + 1
		if n == maxColumns {
			break
		}
	}
	cols[n] = line[start:]
	return n + 1
}

// ParseLine parses one record line (without its LF). It is strict: every
// value must be in the canonical form the writer produces, so that a parsed
// record re-encodes to the same bytes.
func ParseLine(line []byte) (Record, error) {
	var p parser
	var r Record
	err := p.parse(line, &r)
	return r, err
}

// parser holds scratch space and an optional string interner so that a
// streaming reader does not allocate per record.
type parser struct {
	cols   [maxColumns + 1][]byte
	intern func([]byte) string
}

func (p *parser) str(b []byte) string {
	if p.intern != nil {
		return p.intern(b)
	}
	return string(b)
}

// lineKind returns the kind of a split line (column 3), if any.
func lineKind(cols *[maxColumns + 1][]byte, n int) (Kind, bool) {
	if n < 4 {
		return 0, false
	}
	return kindOf(cols[3])
}

// parse parses one record line into r. It runs in steps: the column count
// and kind, the columns every kind shares, the kind's own columns, and the
// chain column last.
func (p *parser) parse(line []byte, r *Record) error {
	*r = Record{}
	n := splitLine(line, &p.cols)
	kind, err := p.kindAndCount(n)
	if err != nil {
		return err
	}
	r.Kind = kind
	names := columnNames[kind]
	wall, obs, err := p.common(names, &r.Seq)
	if err != nil {
		return err
	}
	switch kind {
	case KindBoot:
		err = p.boot(names, wall, obs, &r.Boot)
	case KindSpawn:
		err = p.spawn(names, wall, obs, &r.Spawn)
	case KindComplete:
		err = p.complete(names, wall, obs, &r.Complete)
	case KindRefused:
		err = p.refused(names, wall, obs, &r.Refused)
	case KindControl:
		err = p.control(names, wall, obs, &r.Control)
	}
	if err != nil {
		return err
	}
	return p.chain(n-1, r)
}

// kindAndCount reads the kind (column 3) of a line split into n columns
// and checks that the count is the kind's.
func (p *parser) kindAndCount(n int) (Kind, error) {
	if n < 4 {
		return 0, &ParseError{Column: -1, Err: ErrColumnCount,
			Msg: fmt.Sprintf("%d column(s); a record has seq, wallclock_ms, observer_ns, kind and more", n)}
	}
	kind, ok := kindOf(p.cols[3])
	if !ok {
		return 0, fieldErr(3, "kind", ErrUnknownKind, "want boot, spawn, complete, refused or control, got %q", p.cols[3])
	}
	if want := len(columnNames[kind]); n != want {
		more := ""
		if n > maxColumns {
			more = " or more"
		}
		return 0, &ParseError{Column: -1, Err: ErrColumnCount,
			Msg: fmt.Sprintf("%s record has %d columns%s, want %d", kind, n, more, want)}
	}
	return kind, nil
}

// common parses the columns every kind shares: seq into *seq, and returns
// wallclock_ms and observer_ns.
func (p *parser) common(names []string, seq *uint64) (wall, obs uint64, err error) {
	c := &p.cols
	if *seq, err = p.uint(c, 0, names, 64); err != nil {
		return 0, 0, err
	}
	if wall, err = p.uint(c, 1, names, 63); err != nil {
		return 0, 0, err
	}
	if obs, err = p.uint(c, 2, names, 64); err != nil {
		return 0, 0, err
	}
	return wall, obs, nil
}

func (p *parser) boot(names []string, wall, obs uint64, b *BootRecord) error {
	c := &p.cols
	if obs != 0 {
		return fieldErr(2, names[2], ErrBadField, "boot records carry observer_ns 0, got %q", c[2])
	}
	b.WallclockMs = int64(wall)
	pid, err := p.uint(c, 4, names, 32)
	if err != nil {
		return err
	}
	b.DaemonPid = uint32(pid)
	if !isDash(c[5]) {
		if !decodeLowerHex(c[5], &b.PrevChain) {
			return fieldErr(5, names[5], ErrBadField, "want 64 lowercase hex digits or \"-\", got %q", clip(c[5]))
		}
		b.HasPrevChain = true
	}
	var ok bool
	if b.Reason, ok = bootReasonOf(c[6]); !ok {
		return fieldErr(6, names[6], ErrBadField,
			"want fresh, resume, corrupt_tail, schema_drift, legacy_v1 or rotation, got %q", clip(c[6]))
	}
	return nil
}

func (p *parser) spawn(names []string, wall, obs uint64, s *SpawnRecord) error {
	c := &p.cols
	var err error
	s.WallclockMs, s.ObserverNs = int64(wall), obs
	if s.AgentPid, err = p.pid(c, 4, names); err != nil {
		return err
	}
	if s.ChildPid, err = p.pid(c, 5, names); err != nil {
		return err
	}
	if string(c[6]) != ModeExec {
		return fieldErr(6, names[6], ErrBadField, "want exec, got %q", clip(c[6]))
	}
	s.Mode = ModeExec
	if s.Program, err = p.text(c, 7, names); err != nil {
		return err
	}
	if s.Source, err = p.text(c, 8, names); err != nil {
		return err
	}
	s.TemplateLen, err = p.uint(c, 9, names, 64)
	return err
}

func (p *parser) complete(names []string, wall, obs uint64, x *CompleteRecord) error {
	c := &p.cols
	var err error
	var ok bool
	x.WallclockMs, x.ObserverNs = int64(wall), obs
	if x.AgentPid, err = p.pid(c, 4, names); err != nil {
		return err
	}
	if x.ChildPid, err = p.pid(c, 5, names); err != nil {
		return err
	}
	if x.Outcome, ok = outcomeOf(c[6]); !ok {
		return fieldErr(6, names[6], ErrBadField, "want reaped, killed or reap_failed, got %q", clip(c[6]))
	}
	if err := p.exitStatus(names, x); err != nil {
		return err
	}
	if x.DurationNs, err = p.uint(c, 9, names, 64); err != nil {
		return err
	}
	if x.StdoutLen, err = p.uint(c, 10, names, 64); err != nil {
		return err
	}
	if x.StderrLen, err = p.uint(c, 11, names, 64); err != nil {
		return err
	}
	switch string(c[12]) {
	case "true":
		x.Truncated = true
	case "false":
	default:
		return fieldErr(12, names[12], ErrBadField, "want true or false, got %q", clip(c[12]))
	}
	return nil
}

// exitStatus parses a complete record's exit_code and signal columns (7, 8)
// and checks them against its outcome.
func (p *parser) exitStatus(names []string, x *CompleteRecord) error {
	c := &p.cols
	x.ExitCode, x.Signal = NoExitCode, 0
	if !isDash(c[7]) {
		v, ok := canonicalUint(c[7], 64)
		if !ok || v > 255 {
			return fieldErr(7, names[7], ErrBadField, "want an exit status 0…255 or \"-\", got %q", clip(c[7]))
		}
		x.ExitCode = int(v)
	}
	if !isDash(c[8]) {
		v, ok := canonicalUint(c[8], 64)
		if !ok || v < 1 || v > 255 {
			return fieldErr(8, names[8], ErrBadField, "want a signal number 1…255 or \"-\", got %q", clip(c[8]))
		}
		x.Signal = int(v)
	}
	return checkExitSignal(x)
}

func (p *parser) refused(names []string, wall, obs uint64, x *RefusedRecord) error {
	c := &p.cols
	var err error
	x.WallclockMs, x.ObserverNs = int64(wall), obs
	if x.AgentPid, err = p.pid(c, 4, names); err != nil {
		return err
	}
	x.Reason, err = p.text(c, 5, names)
	return err
}

func (p *parser) control(names []string, wall, obs uint64, x *ControlRecord) error {
	c := &p.cols
	var err error
	x.WallclockMs, x.ObserverNs = int64(wall), obs
	if x.UID, err = p.pid(c, 4, names); err != nil {
		return err
	}
	if x.Action, err = p.text(c, 5, names); err != nil {
		return err
	}
	if x.Target, err = p.optText(c, 6, names); err != nil {
		return err
	}
	switch {
	case isDash(c[7]):
	case string(c[7]) == ControlForever:
		x.Forever = true
	default:
		v, ok := canonicalUint(c[7], 63)
		if !ok || v == 0 {
			return fieldErr(7, names[7], ErrBadField, "want ms since the epoch, \"forever\" or \"-\", got %q", clip(c[7]))
		}
		x.UntilMs = int64(v)
	}
	x.Reason, err = p.optText(c, 8, names)
	return err
}

// chain parses the chain column (the last, index last): a hash, or "-" for
// a record written without chain support.
func (p *parser) chain(last int, r *Record) error {
	c := p.cols[last]
	if isDash(c) {
		r.Unchained = true
		return nil
	}
	if !decodeLowerHex(c, &r.Chain) {
		return fieldErr(last, "chain", ErrBadField, "want 64 lowercase hex digits or \"-\", got %q", clip(c))
	}
	return nil
}

// checkExitSignal enforces docs/audit.md ("The file"): exit_code and signal are never both
// numbers; reap_failed has neither; reaped and killed have exactly one.
func checkExitSignal(x *CompleteRecord) error {
	code, sig := x.ExitCode >= 0, x.Signal > 0
	switch {
	case code && sig:
		return fieldErr(8, "signal", ErrBadField, "exit_code and signal are both numbers")
	case x.Outcome == OutcomeReapFailed && (code || sig):
		return fieldErr(7, "exit_code", ErrBadField, "reap_failed carries neither exit code nor signal")
	case x.Outcome != OutcomeReapFailed && !code && !sig:
		return fieldErr(7, "exit_code", ErrBadField, "%s needs an exit code or a signal", x.Outcome)
	}
	return nil
}

func fieldErr(col int, name string, sentinel error, format string, args ...any) *ParseError {
	return &ParseError{Column: col, Field: name, Err: sentinel, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) uint(c *[maxColumns + 1][]byte, i int, names []string, bits int) (uint64, error) {
	v, ok := canonicalUint(c[i], bits)
	if !ok {
		return 0, fieldErr(i, names[i], ErrBadField, "want a decimal integer (%d-bit, no sign or leading zero), got %q", bits, clip(c[i]))
	}
	return v, nil
}

func (p *parser) pid(c *[maxColumns + 1][]byte, i int, names []string) (uint32, error) {
	v, err := p.uint(c, i, names, 32)
	return uint32(v), err
}

func (p *parser) text(c *[maxColumns + 1][]byte, i int, names []string) (string, error) {
	b := c[i]
	if len(b) == 0 {
		return "", fieldErr(i, names[i], ErrBadField, "empty")
	}
	if bytes.IndexByte(b, '\r') >= 0 {
		return "", fieldErr(i, names[i], ErrBadField, "contains a CR (the writer replaces TAB, CR and LF with a space)")
	}
	return p.str(b), nil
}

// optText is text whose "-" means empty (the writer writes an empty value
// as "-").
func (p *parser) optText(c *[maxColumns + 1][]byte, i int, names []string) (string, error) {
	if isDash(c[i]) {
		return "", nil
	}
	return p.text(c, i, names)
}

// canonicalUint parses plain decimal without sign or leading zeros that fits
// in bits.
func canonicalUint(b []byte, bits int) (uint64, bool) {
	n := len(b)
	if n == 0 || n > 20 || (b[0] == '0' && n > 1) {
		return 0, false
	}
	var v uint64
	for _, c := range b[:min(n, 19)] { // 19 digits never overflow
		d := c - '0'
		if d > 9 {
			return 0, false
		}
		v = v*10 + uint64(d)
	}
	if n == 20 {
		d := b[19] - '0'
		if d > 9 || v > (math.MaxUint64-uint64(d))/10 {
			return 0, false
		}
		v = v*10 + uint64(d)
	}
	if bits < 64 && v >= 1<<uint(bits) {
		return 0, false
	}
	return v, true
}

func isDash(b []byte) bool { return len(b) == 1 && b[0] == '-' }

// clip bounds a value quoted in an error message.
func clip(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}

// maxLineBytes bounds one line; longer lines are reported as malformed
// without being held in memory.
const maxLineBytes = 1 << 20
