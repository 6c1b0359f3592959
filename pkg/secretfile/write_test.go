//go:build unix

package secretfile_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/varta-go/varta/pkg/secretfile"
)

func TestWriteAtomic(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir, path string)
		rule    error // nil: the write succeeds
		outside string
	}{
		{"new file", func(*testing.T, string, string) {}, nil, ""},
		{"replaces an owner-only file", func(t *testing.T, dir, path string) {
			writeFile(t, dir, filepath.Base(path), "old contents that are longer", 0o600)
		}, nil, ""},
		{"leftover temporary file", func(t *testing.T, dir, path string) {
			writeFile(t, dir, "."+filepath.Base(path)+".tmp", "torn", 0o644)
		}, nil, ""},
		{"symlink planted at the temporary name is not followed", func(t *testing.T, dir, path string) {
			victim := writeFile(t, dir, "victim", "victim", 0o600)
			if err := os.Symlink(victim, filepath.Join(dir, "."+filepath.Base(path)+".tmp")); err != nil {
				t.Fatal(err)
			}
		}, nil, "victim"},
		{"symlink at the path", func(t *testing.T, dir, path string) {
			victim := writeFile(t, dir, "victim", "victim", 0o600)
			if err := os.Symlink(victim, path); err != nil {
				t.Fatal(err)
			}
		}, secretfile.ErrSymlink, "victim"},
		{"group-readable file", func(t *testing.T, dir, path string) {
			writeFile(t, dir, filepath.Base(path), "old", 0o640)
		}, secretfile.ErrPermissive, ""},
		{"directory at the path", func(t *testing.T, dir, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, secretfile.ErrNotRegular, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "state.json")
			tc.setup(t, dir, path)
			err := secretfile.WriteAtomic(path, []byte("new"))
			if tc.outside != "" {
				if b, _ := os.ReadFile(filepath.Join(dir, tc.outside)); string(b) != tc.outside {
					t.Fatalf("%s was changed to %q", tc.outside, b)
				}
			}
			if tc.rule != nil {
				if !errors.Is(err, tc.rule) {
					t.Fatalf("got %v, want %v", err, tc.rule)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := secretfile.Read(path) // also checks owner, mode and type
			if err != nil || string(b) != "new" {
				t.Fatalf("read back %q, %v", b, err)
			}
			if _, err := os.Lstat(filepath.Join(dir, ".state.json.tmp")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("temporary file left behind: %v", err)
			}
		})
	}
}

func TestWriteAtomicMissingDirectory(t *testing.T) {
	err := secretfile.WriteAtomic(filepath.Join(t.TempDir(), "nope", "state.json"), []byte("x"))
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v", err)
	}
}
