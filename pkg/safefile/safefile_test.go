//go:build unix

package safefile_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/pkg/safefile"
)

func write(t *testing.T, path string, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte("data"), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // whatever the umask
		t.Fatal(err)
	}
}

// TestOpenRules: each rule refuses what breaks it, with an *Error that
// names the path and wraps the rule, and leaves the directory as it was.
func TestOpenRules(t *testing.T) {
	euid := os.Geteuid()
	strict := safefile.Options{Access: unix.O_RDONLY, Owner: euid, SingleLink: true, Forbidden: 0o077}
	tests := []struct {
		name   string
		setup  func(t *testing.T, dir, path string)
		opts   safefile.Options
		root   bool   // needs root (chown)
		rule   error  // nil: Open succeeds
		errno  error  // also wrapped, when not nil
		detail string // the message says this too
	}{
		{"regular file", func(t *testing.T, dir, path string) { write(t, path, 0o600) }, strict, false, nil, nil, ""},
		{"symlink to a good file", func(t *testing.T, dir, path string) {
			target := filepath.Join(dir, "target")
			write(t, target, 0o600)
			symlink(t, target, path)
		}, strict, false, safefile.ErrSymlink, nil, "is a symbolic link"},
		{"dangling symlink, creating", func(t *testing.T, dir, path string) {
			symlink(t, filepath.Join(dir, "nowhere"), path)
		}, withCreate(strict, safefile.CreateIfMissing), false, safefile.ErrSymlink, nil, "is a symbolic link"},
		{"directory", func(t *testing.T, dir, path string) { mkdir(t, path) }, strict, false, safefile.ErrNotRegular, nil, "(a directory)"},
		{"directory opened for writing", func(t *testing.T, dir, path string) { mkdir(t, path) },
			withAccess(strict, unix.O_WRONLY|unix.O_APPEND), false, safefile.ErrNotRegular, syscall.EISDIR, "(a directory)"},
		{"named pipe without a writer", func(t *testing.T, dir, path string) {
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}, strict, false, safefile.ErrNotRegular, nil, "(a named pipe)"},
		{"named pipe without a reader", func(t *testing.T, dir, path string) {
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}, withAccess(strict, unix.O_WRONLY), false, safefile.ErrNotRegular, syscall.ENXIO, "(a named pipe)"},
		{"socket", func(t *testing.T, dir, path string) {
			l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			l.SetUnlinkOnClose(false)
			t.Cleanup(func() { l.Close() })
		}, strict, false, safefile.ErrNotRegular, nil, "(a socket)"},
		{"two hard links", func(t *testing.T, dir, path string) {
			other := filepath.Join(dir, "other")
			write(t, other, 0o600)
			if err := os.Link(other, path); err != nil {
				t.Fatal(err)
			}
		}, strict, false, safefile.ErrHardLinks, nil, "has 2 hard links"},
		{"two hard links allowed", func(t *testing.T, dir, path string) {
			other := filepath.Join(dir, "other")
			write(t, other, 0o600)
			if err := os.Link(other, path); err != nil {
				t.Fatal(err)
			}
		}, safefile.Options{Access: unix.O_RDONLY, Owner: euid}, false, nil, nil, ""},
		{"group readable", func(t *testing.T, dir, path string) { write(t, path, 0o640) }, strict, false, safefile.ErrMode, nil, "mode 0640; the permission bits 0040"},
		{"other writable", func(t *testing.T, dir, path string) { write(t, path, 0o602) }, strict, false, safefile.ErrMode, nil, "mode 0602; the permission bits 0002"},
		{"group readable allowed", func(t *testing.T, dir, path string) { write(t, path, 0o640) },
			withForbidden(strict, 0o037), false, nil, nil, ""},
		{"another user's file", func(t *testing.T, dir, path string) {
			write(t, path, 0o600)
			if err := os.Chown(path, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, strict, true, safefile.ErrOwner, nil, "owned by uid 65534, must be owned by uid"},
		{"another user's file, any owner", func(t *testing.T, dir, path string) {
			write(t, path, 0o600)
			if err := os.Chown(path, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, withOwner(strict, safefile.AnyOwner), true, nil, nil, ""},
		{"missing", func(t *testing.T, dir, path string) {}, strict, false, nil, syscall.ENOENT, "open file"},
		{"exclusive over an existing file", func(t *testing.T, dir, path string) { write(t, path, 0o600) },
			withCreate(strict, safefile.CreateExclusive), false, nil, syscall.EEXIST, "open file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && os.Geteuid() != 0 {
				t.Skip("needs root to chown a file to another user")
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			tt.setup(t, dir, path)
			before := listing(t, dir)
			f, info, err := safefile.Open(path, tt.opts)
			if tt.rule == nil && tt.errno == nil {
				if err != nil {
					t.Fatalf("Open = %v, want success", err)
				}
				defer f.Close()
				if info.Size != 4 || info.Created {
					t.Fatalf("Info = %+v, want size 4, not created", info)
				}
				if fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0); err != nil || fl&unix.O_NONBLOCK != 0 {
					t.Fatalf("file flags %#x (%v): still non-blocking", fl, err)
				}
				return
			}
			if err == nil {
				f.Close()
				t.Fatal("Open succeeded, want an error")
			}
			var se *safefile.Error
			if !errors.As(err, &se) {
				t.Fatalf("Open error %T %v is not a *safefile.Error", err, err)
			}
			if tt.rule != nil && !errors.Is(err, tt.rule) {
				t.Fatalf("Open = %v, want rule %v", err, tt.rule)
			}
			if tt.errno != nil && !errors.Is(err, tt.errno) {
				t.Fatalf("Open = %v, want %v", err, tt.errno)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.detail) {
				t.Fatalf("Open error %q does not name %s and say %q", err, path, tt.detail)
			}
			if after := listing(t, dir); after != before {
				t.Fatalf("Open changed the directory:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// TestOpenCharDevice: a device is refused on the descriptor (the open of
// /dev/null succeeds).
func TestOpenCharDevice(t *testing.T) {
	_, _, err := safefile.Open(os.DevNull, safefile.Options{Access: unix.O_WRONLY, Owner: safefile.AnyOwner})
	if !errors.Is(err, safefile.ErrNotRegular) || !strings.Contains(err.Error(), "(a character device)") {
		t.Fatalf("Open(%s) = %v, want ErrNotRegular naming a character device", os.DevNull, err)
	}
}

// TestOpenCreate: the create modes, the creation mode and SetBits.
func TestOpenCreate(t *testing.T) {
	old := unix.Umask(0o077) // SetBits must beat the umask
	defer unix.Umask(old)
	tests := []struct {
		name     string
		existing os.FileMode // 0: no file before
		opts     safefile.Options
		created  bool
		perm     uint32
	}{
		{"create if missing", 0, safefile.Options{Create: safefile.CreateIfMissing, Perm: 0o600}, true, 0o600},
		{"open if present", 0o600, safefile.Options{Create: safefile.CreateIfMissing, Perm: 0o600}, false, 0o600},
		{"exclusive", 0, safefile.Options{Create: safefile.CreateExclusive, Perm: 0o600}, true, 0o600},
		{"created group-readable despite the umask", 0, safefile.Options{Create: safefile.CreateIfMissing, Perm: 0o640, SetBits: 0o040}, true, 0o640},
		{"existing made group-readable", 0o600, safefile.Options{Create: safefile.CreateIfMissing, Perm: 0o640, SetBits: 0o040}, false, 0o640},
		{"existing group-readable kept", 0o640, safefile.Options{Create: safefile.CreateIfMissing, Perm: 0o640, SetBits: 0o040, Forbidden: 0o037}, false, 0o640},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f")
			if tt.existing != 0 {
				write(t, path, tt.existing)
			}
			o := tt.opts
			o.Access, o.Owner, o.SingleLink = unix.O_RDWR|unix.O_APPEND, os.Geteuid(), true
			f, info, err := safefile.Open(path, o)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if info.Created != tt.created || info.Perm != tt.perm || uint32(fi.Mode().Perm()) != tt.perm {
				t.Fatalf("Info %+v, file mode %04o; want created %v, mode %04o", info, fi.Mode().Perm(), tt.created, tt.perm)
			}
			if _, err := f.WriteString("x"); err != nil {
				t.Fatal(err)
			}
			if err := safefile.Datasync(f); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDatasyncError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	err = safefile.Datasync(f)
	var pe *os.PathError
	if !errors.As(err, &pe) || pe.Path != path {
		t.Fatalf("Datasync(closed file) = %v, want an *os.PathError naming %s", err, path)
	}
}

func symlink(t *testing.T, target, path string) {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
}

// listing is the names, modes and sizes in dir, to show that a refused
// Open created, changed or removed nothing.
func listing(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range ents {
		fi, err := os.Lstat(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(e.Name() + " " + fi.Mode().String() + " " + string(rune('0'+fi.Size()%10)) + ";")
	}
	return b.String()
}

func withCreate(o safefile.Options, c safefile.Create) safefile.Options { o.Create = c; return o }
func withAccess(o safefile.Options, a int) safefile.Options             { o.Access = a; return o }
func withForbidden(o safefile.Options, m uint32) safefile.Options       { o.Forbidden = m; return o }
func withOwner(o safefile.Options, uid int) safefile.Options            { o.Owner = uid; return o }
