package audit

import (
	"bytes"
	"testing"
)

// FuzzParseLine: the parser never panics, errors name a column inside the
// line, and every accepted line re-encodes to exactly its bytes (the parser
// accepts only the canonical encoding). Seeds live in
// testdata/fuzz/FuzzParseLine.
func FuzzParseLine(f *testing.F) {
	for _, l := range bytes.Split(readExample(f), []byte("\n")) {
		if len(l) > 0 && l[0] != '#' {
			f.Add(l)
		}
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := ParseLine(line)
		if err != nil {
			pe, ok := err.(*ParseError)
			if !ok {
				t.Fatalf("error %T %v", err, err)
			}
			if pe.Column > bytes.Count(line, []byte("\t")) {
				t.Fatalf("error names column %d of a line with %d tabs", pe.Column, bytes.Count(line, []byte("\t")))
			}
			return
		}
		enc := r.AppendLine(nil)
		if !bytes.Equal(enc[:len(enc)-1], line) {
			t.Fatalf("accepted %q, re-encodes to %q", line, enc)
		}
		if err := Validate(r); err != nil {
			t.Fatalf("parsed record does not validate: %v", err)
		}
	})
}
