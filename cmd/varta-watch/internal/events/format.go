package events

import (
	"strconv"

	"github.com/varta-go/varta/cmd/varta-watch/internal/identity"
	"github.com/varta-go/varta/pkg/vlp"
)

// Kind is the second column of an events-file line.
type Kind uint8

// Event kinds (docs/events-file.md §1).
const (
	KindBeat Kind = iota
	KindStall
	KindDecode
	KindIO
	KindCtrunc
	KindMismatch
	KindEviction
	// KindGaveUp: a service exhausted its restart budget (only written
	// with a policy file; docs/services.md).
	KindGaveUp
	numKinds
)

var kindNames = [numKinds]string{"beat", "stall", "decode", "io", "ctrunc", "mismatch", "eviction", "gave_up"}

// String returns the kind as written in the file, or "unknown".
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "unknown"
}

// Reasons carried in Event.Text for KindMismatch.
const (
	MismatchAuthFailure       = "auth_failure"
	MismatchOriginConflict    = "origin_conflict"
	MismatchNamespaceConflict = "namespace_conflict"
)

// Event is one line of the events file. Which fields are written depends on
// Kind; the others are ignored:
//
//	beat      Pid Nonce Status Payload
//	stall     Pid Nonce            (status column is always "stall")
//	decode    Text                 (the decode error as the Rust daemon prints it)
//	io        Text
//	ctrunc    Text
//	mismatch  Pid Text             (MismatchAuthFailure, ...)
//	eviction  Pid
//	gave_up   Pid Text             (Text: the service name)
//
// A Pid of 0 is written as "-"; an empty Text is written as "-". Ident is
// written by the JSON format only (nil: every identity field is null).
type Event struct {
	Ns      uint64         // observer_ns: nanoseconds on the stall clock since start
	Nonce   uint64         // beat, stall
	Text    string         // decode, io, ctrunc, mismatch, gave_up; escaped when written
	Ident   *identity.Info // the agent's identity (JSON format), immutable
	Pid     uint32         // 0 is written as "-"
	Payload uint32         // beat
	Kind    Kind           // line kind
	Status  vlp.Status     // beat: ok, degraded or critical
}

// appendLine appends the events-file line for ev, LF included, to b. It does
// not allocate when b has room.
func appendLine(b []byte, ev *Event) []byte {
	b = strconv.AppendUint(b, ev.Ns, 10)
	b = append(b, '\t')
	b = append(b, kindNames[ev.Kind]...)
	b = append(b, '\t')
	switch ev.Kind {
	case KindBeat:
		b = appendPid(b, ev.Pid)
		b = append(b, '\t')
		b = strconv.AppendUint(b, ev.Nonce, 10)
		b = append(b, '\t')
		b = append(b, ev.Status.String()...)
		b = append(b, '\t')
		b = strconv.AppendUint(b, uint64(ev.Payload), 10)
	case KindStall:
		b = appendPid(b, ev.Pid)
		b = append(b, '\t')
		b = strconv.AppendUint(b, ev.Nonce, 10)
		b = append(b, "\tstall\t-"...)
	case KindDecode, KindIO, KindCtrunc:
		b = append(b, "-\t-\t-\t"...)
		b = appendText(b, ev.Text)
	case KindMismatch, KindGaveUp:
		b = appendPid(b, ev.Pid)
		b = append(b, "\t-\t-\t"...)
		b = appendText(b, ev.Text)
	case KindEviction:
		b = appendPid(b, ev.Pid)
		b = append(b, "\t-\t-\t-"...)
	}
	return append(b, '\n')
}

func appendPid(b []byte, pid uint32) []byte {
	if pid == 0 {
		return append(b, '-')
	}
	return strconv.AppendUint(b, uint64(pid), 10)
}

const hexDigits = "0123456789abcdef"

// appendText appends s escaped for a text column: backslash, TAB, LF and CR
// become \\ \t \n \r, every other control byte (below 0x20, and 0x7f) becomes
// \xNN with lower-case hex digits. Bytes from 0x80 up are copied unchanged,
// so UTF-8 text stays readable. An empty s is written as "-".
func appendText(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			b = append(b, '\\', '\\')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c < 0x20 || c == 0x7f:
			b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return b
}
