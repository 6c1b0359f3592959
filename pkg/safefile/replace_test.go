//go:build unix

package safefile_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/pkg/safefile"
)

// TestReplace: the file ends up holding the data, mode 0600 exactly,
// whatever was at the path or at the temporary name, and nothing else is
// left in the directory; a failed step leaves the old file and no
// temporary file.
func TestReplace(t *testing.T) {
	old := unix.Umask(0) // the mode must be 0600 even without a umask
	defer unix.Umask(old)
	tests := []struct {
		name   string
		setup  func(t *testing.T, dir, path, temp string)
		sync   bool
		op     string // "": Replace succeeds
		errno  error
		remain []string // names left in dir besides "f" (sorted)
	}{
		{"new file", func(t *testing.T, dir, path, temp string) {}, true, "", nil, nil},
		{"over an old file", func(t *testing.T, dir, path, temp string) { write(t, path, 0o644) }, false, "", nil, nil},
		{"over a symlink, its target left alone", func(t *testing.T, dir, path, temp string) {
			write(t, filepath.Join(dir, "victim"), 0o600)
			symlink(t, filepath.Join(dir, "victim"), path)
		}, true, "", nil, []string{"victim"}},
		{"stale temporary file", func(t *testing.T, dir, path, temp string) { write(t, temp, 0o644) }, true, "", nil, nil},
		{"symlink at the temporary name", func(t *testing.T, dir, path, temp string) {
			write(t, filepath.Join(dir, "victim"), 0o600)
			symlink(t, filepath.Join(dir, "victim"), temp)
		}, false, "", nil, []string{"victim"}},
		{"directory at the path", func(t *testing.T, dir, path, temp string) { mkdir(t, path) }, true, "rename", syscall.EISDIR, nil},
		{"directory at the temporary name", func(t *testing.T, dir, path, temp string) {
			mkdir(t, temp)
			write(t, path, 0o600)
		}, true, "create", nil, []string{".f.tmp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			temp := filepath.Join(dir, ".f.tmp")
			tt.setup(t, dir, path, temp)
			before, _ := os.ReadFile(path)
			err := safefile.Replace(path, "", []byte("new\n"), tt.sync)
			if tt.op != "" {
				var se *safefile.Error
				if !errors.As(err, &se) || se.Op != tt.op || (tt.errno != nil && !errors.Is(err, tt.errno)) {
					t.Fatalf("Replace = %v, want an *Error of step %q (%v)", err, tt.op, tt.errno)
				}
				if after, _ := os.ReadFile(path); string(after) != string(before) {
					t.Fatalf("a failed Replace changed the file to %q", after)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				fi, err := os.Lstat(path)
				if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
					t.Fatalf("file after Replace: %v %v, want a regular file 0600", fi.Mode(), err)
				}
				if b, _ := os.ReadFile(path); string(b) != "new\n" {
					t.Fatalf("file holds %q", b)
				}
				if b, err := os.ReadFile(filepath.Join(dir, "victim")); err == nil && string(b) != "data" {
					t.Fatalf("the symlink's target changed to %q", b)
				}
			}
			ents, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range ents {
				if e.Name() != "f" {
					names = append(names, e.Name())
				}
			}
			if len(names) != len(tt.remain) || (len(names) > 0 && names[0] != tt.remain[0]) {
				t.Fatalf("directory holds %v besides f, want %v", names, tt.remain)
			}
		})
	}
}

func TestReplaceMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "f")
	err := safefile.Replace(path, "", []byte("x"), true)
	var se *safefile.Error
	if !errors.As(err, &se) || se.Op != "create" || !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("Replace = %v, want a create error wrapping ENOENT", err)
	}
}
