// Package seedcorpus keeps a committed Go fuzzing seed corpus
// (testdata/fuzz/FuzzX) in step with entries generated from the
// conformance vectors. It is shared by the tests of pkg/vlp and
// pkg/vlp/secure.
package seedcorpus

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// File is the "go test fuzz v1" encoding of one []byte input.
func File(b []byte) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b)
}

// Sync fails t unless every entry (file name → File contents) is present
// and current in dir. With update set it first (re)writes them.
func Sync(t testing.TB, dir string, entries map[string][]byte, update bool) {
	t.Helper()
	if len(entries) == 0 {
		t.Fatal("no seed corpus entries generated from the vectors")
	}
	if update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range entries {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, want := range entries {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("seed corpus entry missing (run go test -run TestFuzzCorpus -update): %v", err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("seed corpus entry %s is stale:\n got %q\nwant %q", name, got, want)
		}
	}
}
