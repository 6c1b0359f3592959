package snooze

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzDecode: the state-file parser never panics, and whatever it accepts
// re-encodes to a file it accepts again with the same entries. Seeds live
// in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"version":1,"snoozes":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := Decode(b)
		if err != nil {
			return
		}
		m := map[string]Entry{}
		for _, e := range entries {
			m[e.Target] = e
		}
		again, err := Decode(encode(m))
		if err != nil {
			t.Fatalf("re-encoded file refused: %v", err)
		}
		if len(again) != len(entries) {
			t.Fatalf("%d entries became %d", len(entries), len(again))
		}
		for _, e := range again {
			o := m[e.Target]
			if !o.Until.Equal(e.Until) || o.Forever != e.Forever || o.Reason != e.Reason || o.UID != e.UID || !o.Since.Equal(e.Since) {
				t.Fatalf("entry %q changed: %+v -> %+v", e.Target, o, e)
			}
		}
	})
}

// TestFuzzSeedsDecode keeps the seed corpus meaningful: the valid seeds
// decode, the others are refused.
func TestFuzzSeedsDecode(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("no seed corpus in %s: %v", dir, err)
	}
	valid := map[string]int{"valid": 3, "empty": 0}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		// The file is "go test fuzz v1\n[]byte(QUOTED)\n".
		line := strings.TrimSuffix(strings.SplitN(string(b), "\n", 2)[1], "\n")
		raw, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(line, "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		got, err := Decode([]byte(raw))
		n, ok := valid[e.Name()]
		switch {
		case ok && (err != nil || len(got) != n):
			t.Errorf("%s: %d entries, %v; want %d entries", e.Name(), len(got), err, n)
		case !ok && err == nil:
			t.Errorf("%s: accepted, want refused", e.Name())
		}
	}
}
