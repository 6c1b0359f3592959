package procfs

import (
	"bytes"
	"strconv"
	"testing"
)

// FuzzParseStartTime: /proc/<pid>/stat carries the process name, which any
// local user controls (spaces, parentheses, newlines). The parser must
// never panic and must read field 22 counted from the last ')'.
func FuzzParseStartTime(f *testing.F) {
	f.Add([]byte("123 (sleep) S 1 123 123 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 987654 5 6 7"))
	f.Add([]byte("42 (a) b (c)) R 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 555 1"))
	f.Add([]byte("1 ()\n) S"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := ParseStartTime(in)
		if err != nil {
			return
		}
		i := bytes.LastIndexByte(in, ')')
		fields := bytes.Fields(in[i+1:])
		if len(fields) < 20 {
			t.Fatalf("parsed %d from %d fields", v, len(fields))
		}
		if n, err := strconv.ParseUint(string(fields[19]), 10, 64); err != nil || n != v {
			t.Fatalf("parsed %d, field 22 is %q", v, fields[19])
		}
	})
}
