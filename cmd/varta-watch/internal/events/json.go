package events

import (
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/varta-go/varta/cmd/varta-watch/internal/identity"
)

// Format is the events file's line format (--export-format).
type Format uint8

// Formats.
const (
	// FormatTSV is the Rust-compatible six TAB-separated columns.
	FormatTSV Format = iota
	// FormatJSON is one JSON object per line (docs/events-file.md): every
	// column, the agent's identity and a wall-clock RFC 3339 time, for log
	// shippers that ingest JSON lines without parsing rules.
	FormatJSON
	numFormats
)

// ParseFormat parses --export-format.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "tsv":
		return FormatTSV, nil
	case "json":
		return FormatJSON, nil
	}
	return 0, fmt.Errorf("export format %q: must be tsv or json", s)
}

// String returns the format's flag value.
func (f Format) String() string {
	if f == FormatJSON {
		return "json"
	}
	return "tsv"
}

// appendJSON appends the JSON line for ev. Keys are always present, in a
// fixed order; a value that does not apply to the kind, or is unknown, is
// null:
//
//	{"time":"…","observer_ns":N,"kind":"beat","pid":N,"nonce":N,"status":"ok",
//	 "payload":N,"text":null,"service":"web","uid":N,"comm":"…","exe":"…",
//	 "unit":"…","container":null}
func (w *Writer) appendJSON(b []byte, ev *Event) []byte {
	var wall time.Time
	if w.opts.Wall != nil {
		wall = w.opts.Wall(ev.Ns)
	} else {
		wall = time.Now()
	}
	return appendJSONLine(b, ev, wall)
}

func appendJSONLine(b []byte, ev *Event, wall time.Time) []byte {
	b = append(b, `{"time":"`...)
	b = wall.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","observer_ns":`...)
	b = strconv.AppendUint(b, ev.Ns, 10)
	b = append(b, `,"kind":"`...)
	b = append(b, ev.Kind.String()...)
	b = append(b, `","pid":`...)
	pid, nonce, status, payload, text := false, false, "", false, false
	switch ev.Kind {
	case KindBeat:
		pid, nonce, status, payload = true, true, ev.Status.String(), true
	case KindStall:
		pid, nonce, status = true, true, "stall"
	case KindDecode, KindIO, KindCtrunc:
		text = true
	case KindMismatch, KindGaveUp:
		pid, text = true, true
	case KindEviction:
		pid = true
	}
	if pid && ev.Pid != 0 {
		b = strconv.AppendUint(b, uint64(ev.Pid), 10)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"nonce":`...)
	if nonce {
		b = strconv.AppendUint(b, ev.Nonce, 10)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"status":`...)
	b = appendJSONOpt(b, status)
	b = append(b, `,"payload":`...)
	if payload {
		b = strconv.AppendUint(b, uint64(ev.Payload), 10)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"text":`...)
	if text {
		b = appendJSONOpt(b, ev.Text)
	} else {
		b = append(b, "null"...)
	}
	id := ev.Ident
	if id == nil {
		b = append(b, `,"service":null,"uid":null,"comm":null,"exe":null,"unit":null,"container":null}`...)
		return append(b, '\n')
	}
	b = append(b, `,"service":`...)
	b = appendJSONOpt(b, id.Service)
	b = append(b, `,"uid":`...)
	if id.HasUID {
		b = strconv.AppendUint(b, uint64(id.UID), 10)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"comm":`...)
	b = appendJSONOpt(b, id.Comm)
	b = append(b, `,"exe":`...)
	b = appendJSONOpt(b, id.Exe)
	b = append(b, `,"unit":`...)
	b = appendJSONOpt(b, id.Unit)
	b = append(b, `,"container":`...)
	b = appendJSONOpt(b, id.Container)
	return append(b, "}\n"...)
}

// appendJSONOpt appends s as a JSON string, or null when s is empty or
// identity.Unknown.
func appendJSONOpt(b []byte, s string) []byte {
	if s == "" || s == identity.Unknown {
		return append(b, "null"...)
	}
	return appendJSONString(b, s)
}

// appendJSONString appends s as a JSON string: quote, backslash and
// control characters escaped, invalid UTF-8 replaced by U+FFFD (as
// encoding/json does), U+2028 and U+2029 escaped for JavaScript readers.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, `\u202`...)
			b = append(b, hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
