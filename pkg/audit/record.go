package audit

import (
	"strconv"
)

// Header lines (docs/audit.md, "The file"). They are written with a trailing LF.
const (
	HeaderV2 = "# varta-watch recovery audit v2"
	HeaderV1 = "# varta-watch recovery audit v1"
)

// Kind is the record kind in column 3.
type Kind uint8

// Record kinds.
const (
	KindBoot Kind = iota + 1
	KindSpawn
	KindComplete
	KindRefused
	// KindControl is an operator action taken through the control socket
	// (snooze, resume, reload): the extension of docs/audit.md "Control
	// records". A log without operator actions never contains one.
	KindControl
)

// Column counts per kind (docs/audit.md, "The file").
const (
	bootColumns     = 8
	spawnColumns    = 11
	completeColumns = 14
	refusedColumns  = 7
	controlColumns  = 10
	maxColumns      = completeColumns
)

// String returns the ASCII kind as written in the file.
func (k Kind) String() string {
	switch k {
	case KindBoot:
		return "boot"
	case KindSpawn:
		return "spawn"
	case KindComplete:
		return "complete"
	case KindRefused:
		return "refused"
	case KindControl:
		return "control"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

var kindNames = [...][]byte{
	KindBoot:     []byte("boot"),
	KindSpawn:    []byte("spawn"),
	KindComplete: []byte("complete"),
	KindRefused:  []byte("refused"),
	KindControl:  []byte("control"),
}

// bytes returns the ASCII kind without allocating.
func (k Kind) bytes() []byte {
	if k >= KindBoot && k <= KindControl {
		return kindNames[k]
	}
	return []byte(k.String())
}

// Columns returns the number of columns of a record of kind k (0 if k is
// not a kind).
func (k Kind) Columns() int {
	switch k {
	case KindBoot:
		return bootColumns
	case KindSpawn:
		return spawnColumns
	case KindComplete:
		return completeColumns
	case KindRefused:
		return refusedColumns
	case KindControl:
		return controlColumns
	}
	return 0
}

// MarshalText implements encoding.TextMarshaler.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// ParseKind maps "boot", "spawn", "complete", "refused" and "control" to
// their Kind.
func ParseKind(s string) (Kind, bool) { return kindOf([]byte(s)) }

func kindOf(b []byte) (Kind, bool) {
	switch string(b) {
	case "boot":
		return KindBoot, true
	case "spawn":
		return KindSpawn, true
	case "complete":
		return KindComplete, true
	case "refused":
		return KindRefused, true
	case "control":
		return KindControl, true
	}
	return 0, false
}

// BootReason is column 6 of a boot record.
type BootReason string

// Boot reasons (docs/audit.md, "The file").
const (
	// BootFresh: new or empty file.
	BootFresh BootReason = "fresh"
	// BootResume: restart on an intact file.
	BootResume BootReason = "resume"
	// BootCorruptTail: the last line was torn and was truncated away.
	BootCorruptTail BootReason = "corrupt_tail"
	// BootSchemaDrift: the file had no v2 header, or its last line did not
	// parse; a v2 header was appended and the old bytes kept.
	BootSchemaDrift BootReason = "schema_drift"
	// BootLegacyV1: a v1 file; kept, v2 header appended.
	BootLegacyV1 BootReason = "legacy_v1"
	// BootRotation: first record of a new generation.
	BootRotation BootReason = "rotation"
)

// bootReasons are the values of BootReason.
var bootReasons = []BootReason{BootFresh, BootResume, BootCorruptTail, BootSchemaDrift, BootLegacyV1, BootRotation}

func bootReasonOf(b []byte) (BootReason, bool) { return oneOf(b, bootReasons) }

// Outcome is column 6 of a complete record.
type Outcome string

// Outcomes of a recovery child.
const (
	OutcomeReaped     Outcome = "reaped"
	OutcomeKilled     Outcome = "killed"
	OutcomeReapFailed Outcome = "reap_failed"
)

// outcomes are the values of Outcome.
var outcomes = []Outcome{OutcomeReaped, OutcomeKilled, OutcomeReapFailed}

func outcomeOf(b []byte) (Outcome, bool) { return oneOf(b, outcomes) }

// oneOf returns the element of vals spelled b.
func oneOf[T ~string](b []byte, vals []T) (T, bool) {
	for _, v := range vals {
		if string(v) == string(b) {
			return v, true
		}
	}
	return "", false
}

// ModeExec is the only spawn mode (no shell is ever involved).
const ModeExec = "exec"

// SourceInline is the spawn source for --recovery-exec.
const SourceInline = "inline"

// BootRecord is a daemon start, restart or rotation.
type BootRecord struct {
	WallclockMs int64 // ms since the Unix epoch
	DaemonPid   uint32
	// PrevChain is shown in column 5 when HasPrevChain; otherwise the column
	// is "-". It is display only: the chain always links to the previous
	// record present in the file.
	PrevChain    Hash
	HasPrevChain bool
	Reason       BootReason
}

// SpawnRecord: a recovery child was started.
type SpawnRecord struct {
	WallclockMs int64  // 0: stamped by the Writer at enqueue
	ObserverNs  uint64 // the observer's stall clock
	AgentPid    uint32
	ChildPid    uint32
	Mode        string // "exec" (empty means exec)
	Program     string // as configured; TAB/CR/LF become spaces
	Source      string // "inline" or the command file's path; sanitized
	TemplateLen uint64 // byte length of the space-joined argv after {pid} substitution
}

// NoExitCode is CompleteRecord.ExitCode when the child did not exit normally.
const NoExitCode = -1

// CompleteRecord: a recovery child was reaped, killed or could not be reaped.
type CompleteRecord struct {
	WallclockMs int64  // 0: stamped by the Writer at enqueue
	ObserverNs  uint64 // the observer's stall clock
	AgentPid    uint32
	ChildPid    uint32
	Outcome     Outcome
	// ExitCode is the exit status 0…255 of a normal exit, or NoExitCode (-1)
	// when the child died by a signal or could not be reaped.
	ExitCode int
	// Signal is the terminating signal 1…255, or 0 for none.
	Signal     int
	DurationNs uint64
	StdoutLen  uint64
	StderrLen  uint64
	Truncated  bool
}

// RefusedRecord: a stall was not recovered (docs/recovery.md §3).
type RefusedRecord struct {
	WallclockMs int64  // 0: stamped by the Writer at enqueue
	ObserverNs  uint64 // the observer's stall clock
	AgentPid    uint32
	Reason      string // sanitized; varta-watch writes Reason.Column
}

// Control actions written by varta-watch (docs/audit.md "Control
// records"). The verifier accepts any sanitized token in the action column,
// so that a newer daemon's actions still verify.
const (
	ControlSnooze = "snooze"
	ControlResume = "resume"
	ControlReload = "reload"
)

// ControlForever is the until column of a snooze without an end.
const ControlForever = "forever"

// ControlRecord: an operator action through the control socket.
type ControlRecord struct {
	WallclockMs int64  // 0: stamped by the Writer at enqueue
	ObserverNs  uint64 // the observer's stall clock
	UID         uint32 // the requesting peer's uid (SO_PEERCRED)
	Action      string // snooze, resume, reload; sanitized
	Target      string // a service, pid:N, all; "" is written as "-"; sanitized
	// UntilMs is the end of a snooze (ms since the Unix epoch); 0 with
	// Forever false means none ("-").
	UntilMs int64
	Forever bool   // the until column is "forever"
	Reason  string // the operator's reason or a reload's result; "" is written as "-"; sanitized
}

// Record is one parsed or to-be-written line: seq, the kind-specific part
// selected by Kind, and the chain column.
type Record struct {
	Seq      uint64
	Kind     Kind
	Boot     BootRecord     // valid when Kind == KindBoot
	Spawn    SpawnRecord    // valid when Kind == KindSpawn
	Complete CompleteRecord // valid when Kind == KindComplete
	Refused  RefusedRecord  // valid when Kind == KindRefused
	Control  ControlRecord  // valid when Kind == KindControl
	// Chain is the value of the chain column; Unchained means the column is
	// "-" (a writer without chain support).
	Chain     Hash
	Unchained bool
}

// WallclockMs returns column 1.
func (r *Record) WallclockMs() int64 {
	switch r.Kind {
	case KindBoot:
		return r.Boot.WallclockMs
	case KindSpawn:
		return r.Spawn.WallclockMs
	case KindComplete:
		return r.Complete.WallclockMs
	case KindRefused:
		return r.Refused.WallclockMs
	case KindControl:
		return r.Control.WallclockMs
	}
	return 0
}

// ObserverNs returns column 2 (always 0 for boot records).
func (r *Record) ObserverNs() uint64 {
	switch r.Kind {
	case KindSpawn:
		return r.Spawn.ObserverNs
	case KindComplete:
		return r.Complete.ObserverNs
	case KindRefused:
		return r.Refused.ObserverNs
	case KindControl:
		return r.Control.ObserverNs
	}
	return 0
}

// AgentPid returns column 4 of spawn, complete and refused records; ok is
// false for boot records.
func (r *Record) AgentPid() (pid uint32, ok bool) {
	switch r.Kind {
	case KindSpawn:
		return r.Spawn.AgentPid, true
	case KindComplete:
		return r.Complete.AgentPid, true
	case KindRefused:
		return r.Refused.AgentPid, true
	}
	return 0, false
}

// AppendBody appends the record's body: every column from seq up to, not
// including, the TAB before the chain column. This is what the chain hashes.
func (r *Record) AppendBody(dst []byte) []byte {
	dst = strconv.AppendUint(dst, r.Seq, 10)
	dst = append(dst, '\t')
	dst = strconv.AppendInt(dst, r.WallclockMs(), 10)
	dst = append(dst, '\t')
	dst = strconv.AppendUint(dst, r.ObserverNs(), 10)
	dst = append(dst, '\t')
	dst = append(dst, r.Kind.String()...)
	switch r.Kind {
	case KindBoot:
		b := &r.Boot
		dst = append(dst, '\t')
		dst = strconv.AppendUint(dst, uint64(b.DaemonPid), 10)
		dst = append(dst, '\t')
		if b.HasPrevChain {
			dst = appendHex(dst, b.PrevChain)
		} else {
			dst = append(dst, '-')
		}
		dst = append(dst, '\t')
		dst = appendSanitized(dst, string(b.Reason))
	case KindSpawn:
		s := &r.Spawn
		dst = append(dst, '\t')
		dst = strconv.AppendUint(dst, uint64(s.AgentPid), 10)
		dst = append(dst, '\t')
		dst = strconv.AppendUint(dst, uint64(s.ChildPid), 10)
		dst = append(dst, '\t')
		if s.Mode == "" {
			dst = append(dst, ModeExec...)
		} else {
			dst = appendSanitized(dst, s.Mode)
		}
		dst = append(dst, '\t')
		dst = appendSanitized(dst, s.Program)
		dst = append(dst, '\t')
		dst = appendSanitized(dst, s.Source)
		dst = append(dst, '\t')
		dst = strconv.AppendUint(dst, s.TemplateLen, 10)
	case KindComplete:
		c := &r.Complete
		dst = append(dst, '\t')
		dst = strconv.AppendUint(dst, uint64(c.AgentPid), 10)
		dst = append(dst, '\t')
		dst = strconv.AppendUint(dst, uint64(c.ChildPid), 10)
		dst = append(dst, '\t')
		dst = appendSanitized(dst, string(c.Outcome))
		dst = append(dst, '\t')
		dst = appendOptInt(dst, c.ExitCode >= 0, c.ExitCode)
		dst = append(dst, '\t')
		dst = appendOptInt(dst, c.Signal > 0, c.Signal)
		dst = append(dst, '\t')
		dst = strconv.AppendUint(dst, c.DurationNs, 10)
		dst = append(dst, '\t')
		dst = strconv.AppendUint(dst, c.StdoutLen, 10)
		dst = append(dst, '\t')
		dst = strconv.AppendUint(dst, c.StderrLen, 10)
		dst = append(dst, '\t')
		dst = strconv.AppendBool(dst, c.Truncated)
	case KindRefused:
		dst = append(dst, '\t')
		dst = strconv.AppendUint(dst, uint64(r.Refused.AgentPid), 10)
		dst = append(dst, '\t')
		dst = appendSanitized(dst, r.Refused.Reason)
	case KindControl:
		x := &r.Control
		dst = append(dst, '\t')
		dst = strconv.AppendUint(dst, uint64(x.UID), 10)
		dst = append(dst, '\t')
		dst = appendSanitized(dst, x.Action)
		dst = append(dst, '\t')
		dst = appendOptText(dst, x.Target)
		dst = append(dst, '\t')
		switch {
		case x.Forever:
			dst = append(dst, ControlForever...)
		case x.UntilMs > 0:
			dst = strconv.AppendInt(dst, x.UntilMs, 10)
		default:
			dst = append(dst, '-')
		}
		dst = append(dst, '\t')
		dst = appendOptText(dst, x.Reason)
	}
	return dst
}

// AppendLine appends the whole line: body, TAB, chain column ("-" when
// Unchained) and LF.
func (r *Record) AppendLine(dst []byte) []byte {
	return r.appendChainColumn(r.AppendBody(dst))
}

func (r *Record) appendChainColumn(dst []byte) []byte {
	dst = append(dst, '\t')
	if r.Unchained {
		dst = append(dst, '-')
	} else {
		dst = appendHex(dst, r.Chain)
	}
	return append(dst, '\n')
}

// Link sets r.Chain to the link computed from prev and the record's body
// (the chain column is then a hash, not "-").
func (r *Record) Link(prev Hash) {
	var buf [256]byte
	r.appendLinked(buf[:0], prev)
}

// appendLinked links r to prev like Link and appends its whole line,
// encoding the body once: the chain is hashed over the appended body.
func (r *Record) appendLinked(dst []byte, prev Hash) []byte {
	start := len(dst)
	dst = r.AppendBody(dst)
	r.Unchained = false
	r.Chain = ChainHash(prev, r.Kind, dst[start:])
	return r.appendChainColumn(dst)
}

// appendOptText writes s sanitized, or "-" when s is empty.
func appendOptText(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, '-')
	}
	return appendSanitized(dst, s)
}

func appendOptInt(dst []byte, ok bool, v int) []byte {
	if !ok {
		return append(dst, '-')
	}
	return strconv.AppendInt(dst, int64(v), 10)
}

// Sanitize replaces TAB, CR and LF with a space, as the writer does for
// program, source and reason.
func Sanitize(s string) string {
	for i := 0; i < len(s); i++ {
		if isBreakByte(s[i]) {
			return string(appendSanitized(make([]byte, 0, len(s)), s))
		}
	}
	return s
}

func appendSanitized(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isBreakByte(c) {
			c = ' '
		}
		dst = append(dst, c)
	}
	return dst
}

func isBreakByte(c byte) bool { return c == '\t' || c == '\r' || c == '\n' }
