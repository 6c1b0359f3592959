package state

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
)

// Version is the state file format version.
const Version = 1

// MaxLine is the longest line a state file may contain.
const MaxLine = 512

// ErrFormat is wrapped by every parse error.
var ErrFormat = errors.New("malformed state file")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// FormatError names the line and the rule a state file breaks.
type FormatError struct {
	Line   int // 1-based; 0 when the error concerns the whole file
	Detail string
}

func (e *FormatError) Error() string {
	if e.Line == 0 {
		return "state file: " + e.Detail
	}
	return "state file line " + strconv.Itoa(e.Line) + ": " + e.Detail
}

// Unwrap lets errors.Is match ErrFormat.
func (e *FormatError) Unwrap() error { return ErrFormat }

func formatErr(line int, format string, args ...any) error {
	return &FormatError{Line: line, Detail: fmt.Sprintf(format, args...)}
}

// encoder builds a state file.
type encoder struct {
	buf []byte
	n   int
}

// newEncoder starts a file of about records lines of about perRecord
// bytes each (the buffer is sized once).
func newEncoder(kind string, savedUnixNs int64, records, perRecord int, extra ...string) *encoder {
	e := &encoder{buf: make([]byte, 0, 128+records*perRecord)}
	e.buf = fmt.Appendf(e.buf, "varta-watch-state %s v%d\nsaved %d\n", kind, Version, savedUnixNs)
	for _, x := range extra {
		e.buf = append(e.buf, x...)
		e.buf = append(e.buf, '\n')
	}
	return e
}

// record appends one record line; fields are appended by fn.
func (e *encoder) record(fn func(b []byte) []byte) {
	e.buf = fn(e.buf)
	e.buf = append(e.buf, '\n')
	e.n++
}

func (e *encoder) finish() []byte {
	sum := crc32.Checksum(e.buf, castagnoli)
	return fmt.Appendf(e.buf, "end %d %08x\n", e.n, sum)
}

// lines splits a state file of the given kind into its header values and
// record lines after checking the framing: header, save time, the end line
// with its count and checksum, the line length bound and maxRecords.
type framed struct {
	saved   int64
	headers map[string]string // "key value" lines between saved and records (known keys only)
	records [][]byte          // record lines, without the newline
	first   int               // line number of records[0]
}

func unframe(data []byte, kind string, headerKeys []string, recordWord string, maxRecords int) (*framed, error) {
	if len(data) == 0 {
		return nil, formatErr(0, "empty")
	}
	if data[len(data)-1] != '\n' {
		return nil, formatErr(0, "does not end with a newline (truncated?)")
	}
	body := data[:len(data)-1]
	cut := bytes.LastIndexByte(body, '\n')
	if cut < 0 {
		return nil, formatErr(1, "no end line")
	}
	endLine := string(body[cut+1:])
	covered := data[:cut+1]
	lines := bytes.Split(body[:cut], []byte{'\n'})
	endNo := len(lines) + 1
	var n int
	var sum uint32
	if k, err := fmt.Sscanf(endLine, "end %d %08x", &n, &sum); err != nil || k != 2 ||
		endLine != fmt.Sprintf("end %d %08x", n, sum) {
		return nil, formatErr(endNo, "last line must be \"end <records> <crc32c>\"")
	}
	if got := crc32.Checksum(covered, castagnoli); got != sum {
		return nil, formatErr(endNo, "checksum %08x does not match the contents (%08x): the file was altered or torn", sum, got)
	}
	for i, l := range lines {
		if len(l) > MaxLine {
			return nil, formatErr(i+1, "longer than %d bytes", MaxLine)
		}
	}
	want := fmt.Sprintf("varta-watch-state %s v%d", kind, Version)
	if string(lines[0]) != want {
		return nil, formatErr(1, "header must be %q", want)
	}
	if len(lines) < 2 {
		return nil, formatErr(2, "missing \"saved <unix_ns>\" line")
	}
	f := &framed{headers: map[string]string{}}
	w, ok := fieldsN(lines[1], 2)
	if !ok || w[0] != "saved" {
		return nil, formatErr(2, "second line must be \"saved <unix_ns>\"")
	}
	saved, err := parseInt(w[1])
	if err != nil {
		return nil, formatErr(2, "saved: %v", err)
	}
	f.saved = saved
	i := 2
	for ; i < len(lines); i++ {
		w, ok := fieldsN(lines[i], 2)
		if !ok || w[0] == recordWord {
			break
		}
		known := false
		for _, k := range headerKeys {
			known = known || k == w[0]
		}
		if !known {
			return nil, formatErr(i+1, "unknown line %q", w[0])
		}
		if _, dup := f.headers[w[0]]; dup {
			return nil, formatErr(i+1, "%q given twice", w[0])
		}
		f.headers[w[0]] = w[1]
	}
	f.records = lines[i:]
	f.first = i + 1
	if len(f.records) != n {
		return nil, formatErr(endNo, "end line says %d records, the file has %d", n, len(f.records))
	}
	if n > maxRecords {
		return nil, formatErr(endNo, "%d records, more than the limit of %d", n, maxRecords)
	}
	return f, nil
}

// fieldsN splits a line on single spaces into exactly n fields.
func fieldsN(l []byte, n int) ([]string, bool) {
	s := string(l)
	out := make([]string, 0, n)
	for len(out) < n-1 {
		i := bytes.IndexByte([]byte(s), ' ')
		if i <= 0 {
			return nil, false
		}
		out = append(out, s[:i])
		s = s[i+1:]
	}
	if s == "" || bytes.IndexByte([]byte(s), ' ') >= 0 {
		return nil, false
	}
	return append(out, s), true
}

// parseUint accepts plain decimal digits only (no sign, no leading zeros
// except "0"), up to bits wide.
func parseUint(s string, bits int) (uint64, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%q is not a canonical decimal number", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a canonical decimal number", s)
		}
	}
	v, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	return v, nil
}

func parseInt(s string) (int64, error) {
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	v, err := parseUint(s, 63)
	if err != nil {
		return 0, err
	}
	if neg {
		if v == 0 {
			return 0, fmt.Errorf("%q is not a canonical decimal number", "-0")
		}
		return -int64(v), nil
	}
	return int64(v), nil
}

// optional parses "-" (absent) or a decimal number.
func optional(s string, bits int) (uint64, bool, error) {
	if s == "-" {
		return 0, false, nil
	}
	v, err := parseUint(s, bits)
	return v, err == nil, err
}

func appendOptional(b []byte, v uint64, ok bool) []byte {
	if !ok {
		return append(b, '-')
	}
	return strconv.AppendUint(b, v, 10)
}

func appendOptionalInt(b []byte, v int64, ok bool) []byte {
	if !ok {
		return append(b, '-')
	}
	return strconv.AppendInt(b, v, 10)
}

func parseOptionalInt(s string) (int64, bool, error) {
	if s == "-" {
		return 0, false, nil
	}
	v, err := parseInt(s)
	return v, err == nil, err
}
