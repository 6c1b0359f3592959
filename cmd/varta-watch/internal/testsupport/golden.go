package testsupport

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// ReadGolden returns the golden file at path. With update set (the calling
// package's flag, named flagName in messages) it first writes got there,
// creating its directory. A missing file fails t with how to create it.
func ReadGolden(t testing.TB, path string, got []byte, update bool, flagName string) []byte {
	t.Helper()
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run '^%s$' %s to write it)", err, t.Name(), flagName)
	}
	return want
}

// CheckGolden fails t unless got equals the golden file at path (see
// ReadGolden), showing both.
func CheckGolden(t testing.TB, path string, got []byte, update bool, flagName string) {
	t.Helper()
	if want := ReadGolden(t, path, got, update, flagName); !bytes.Equal(got, want) {
		t.Fatalf("output differs from %s (%s to accept):\n got:\n%s\nwant:\n%s", path, flagName, got, want)
	}
}
