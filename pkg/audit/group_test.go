package audit

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestWriterGroupReadable: with GroupReadable the audit file and its
// rotated generations are 0640 whatever the umask, an existing 0600 file
// gains group read, and varta-audit rotate keeps the mode; without it
// every file is 0600.
func TestWriterGroupReadable(t *testing.T) {
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	for _, tc := range []struct {
		name  string
		group bool
		want  os.FileMode
	}{
		{"group-readable", true, 0o640},
		{"owner-only", false, 0o600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := logPath(t)
			w := openWriter(t, Options{Path: path, MaxBytes: 4096, QueueSize: 1024, GroupReadable: tc.group})
			writeCycles(t, w, 0, 100)
			closeWriter(t, w)
			if _, err := Rotate(path, RotateOptions{}); err != nil {
				t.Fatal(err)
			}
			gens, err := ListGenerations(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(gens) < 3 {
				t.Fatalf("only %d files: no rotation happened", len(gens))
			}
			for _, g := range gens {
				fi, err := os.Stat(g.Path)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != tc.want {
					t.Errorf("%s has mode %04o, want %04o", g.Path, fi.Mode().Perm(), tc.want)
				}
			}
		})
	}
}

func TestWriterGroupReadableExistingFile(t *testing.T) {
	path := logPath(t)
	closeWriter(t, openWriter(t, Options{Path: path}))
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("default mode %04o", fi.Mode().Perm())
	}
	closeWriter(t, openWriter(t, Options{Path: path, GroupReadable: true}))
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %04o after opening with GroupReadable, want 0640", fi.Mode().Perm())
	}
}
