//go:build unix

package secretfile_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/pkg/secretfile"
)

const secret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"

// writeFile creates dir/name with the given content and exact mode (the
// umask does not apply).
func writeFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRules(t *testing.T) {
	euid := os.Geteuid()
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) string
		rule    error  // nil: the file is accepted
		detail  string // exact text after `secret file "<path>": `
		skipMsg func() string
	}{
		{
			name:  "regular 0600 owned by us",
			setup: func(t *testing.T, dir string) string { return writeFile(t, dir, "key", secret, 0o600) },
		},
		{
			name:  "regular 0400",
			setup: func(t *testing.T, dir string) string { return writeFile(t, dir, "key", secret, 0o400) },
		},
		{
			name: "symlink in a directory component is followed",
			setup: func(t *testing.T, dir string) string {
				real := filepath.Join(dir, "real")
				if err := os.Mkdir(real, 0o700); err != nil {
					t.Fatal(err)
				}
				writeFile(t, real, "key", secret, 0o600)
				if err := os.Symlink(real, filepath.Join(dir, "link")); err != nil {
					t.Fatal(err)
				}
				return filepath.Join(dir, "link", "key")
			},
		},
		{
			name: "symlink to a valid secret file",
			setup: func(t *testing.T, dir string) string {
				target := writeFile(t, dir, "target", secret, 0o600)
				p := filepath.Join(dir, "key")
				if err := os.Symlink(target, p); err != nil {
					t.Fatal(err)
				}
				return p
			},
			rule:   secretfile.ErrSymlink,
			detail: "is a symlink (secret files must not be symlinks)",
		},
		{
			name: "dangling symlink",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "key")
				if err := os.Symlink(filepath.Join(dir, "missing"), p); err != nil {
					t.Fatal(err)
				}
				return p
			},
			rule:   secretfile.ErrSymlink,
			detail: "is a symlink (secret files must not be symlinks)",
		},
		{
			name: "directory",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "key")
				if err := os.Mkdir(p, 0o700); err != nil {
					t.Fatal(err)
				}
				return p
			},
			rule:   secretfile.ErrNotRegular,
			detail: "is a directory (secret files must be regular files)",
		},
		{
			name: "fifo without a writer does not block",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "key")
				if err := unix.Mkfifo(p, 0o600); err != nil {
					t.Fatal(err)
				}
				return p
			},
			rule:   secretfile.ErrNotRegular,
			detail: "is a named pipe (secret files must be regular files)",
		},
		{
			name: "unix socket",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "s")
				l, err := net.Listen("unix", p)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { l.Close() })
				return p
			},
			rule:   secretfile.ErrNotRegular,
			detail: "is a socket (secret files must be regular files)",
		},
		{
			name:   "mode 0644",
			setup:  func(t *testing.T, dir string) string { return writeFile(t, dir, "key", secret, 0o644) },
			rule:   secretfile.ErrPermissive,
			detail: "mode 0644 grants group/other access (must be 0600 or stricter)",
		},
		{
			name:   "mode 0640",
			setup:  func(t *testing.T, dir string) string { return writeFile(t, dir, "key", secret, 0o640) },
			rule:   secretfile.ErrPermissive,
			detail: "mode 0640 grants group/other access (must be 0600 or stricter)",
		},
		{
			name:   "other execute bit only",
			setup:  func(t *testing.T, dir string) string { return writeFile(t, dir, "key", secret, 0o601) },
			rule:   secretfile.ErrPermissive,
			detail: "mode 0601 grants group/other access (must be 0600 or stricter)",
		},
		{
			name: "owned by another uid",
			setup: func(t *testing.T, dir string) string {
				p := writeFile(t, dir, "key", secret, 0o600)
				if err := os.Chown(p, 65534, -1); err != nil {
					t.Fatal(err)
				}
				return p
			},
			rule:   secretfile.ErrWrongOwner,
			detail: fmt.Sprintf("owned by uid 65534, must be owned by uid %d", euid),
			skipMsg: func() string {
				if euid != 0 {
					return "needs root to chown a file to another uid"
				}
				return ""
			},
		},
		{
			name: "wrong owner is reported before a permissive mode",
			setup: func(t *testing.T, dir string) string {
				p := writeFile(t, dir, "key", secret, 0o644)
				if err := os.Chown(p, 65534, -1); err != nil {
					t.Fatal(err)
				}
				return p
			},
			rule:   secretfile.ErrWrongOwner,
			detail: fmt.Sprintf("owned by uid 65534, must be owned by uid %d", euid),
			skipMsg: func() string {
				if euid != 0 {
					return "needs root to chown a file to another uid"
				}
				return ""
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.skipMsg != nil {
				if msg := tt.skipMsg(); msg != "" {
					t.Skip(msg)
				}
			}
			p := tt.setup(t, t.TempDir())
			checkErr := secretfile.Check(p)
			data, readErr := secretfile.Read(p)
			if tt.rule == nil {
				if checkErr != nil || readErr != nil {
					t.Fatalf("Check = %v, Read = %v; want both nil", checkErr, readErr)
				}
				if string(data) != secret {
					t.Errorf("Read = %q, want %q", data, secret)
				}
				return
			}
			for fn, err := range map[string]error{"Check": checkErr, "Read": readErr} {
				if !errors.Is(err, tt.rule) {
					t.Errorf("%s = %v, want errors.Is %v", fn, err, tt.rule)
					continue
				}
				var se *secretfile.Error
				if !errors.As(err, &se) || se.Path != p || se.Rule != tt.rule {
					t.Errorf("%s: errors.As *Error = %+v, want Path %q Rule %v", fn, se, p, tt.rule)
				}
				want := fmt.Sprintf("secret file %q: %s", p, tt.detail)
				if err.Error() != want {
					t.Errorf("%s error text\n got %q\nwant %q", fn, err.Error(), want)
				}
			}
			if data != nil {
				t.Errorf("Read returned data %q with an error", data)
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nope")
	_, err := secretfile.Read(p)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Read = %v, want fs.ErrNotExist", err)
	}
	for _, rule := range []error{secretfile.ErrSymlink, secretfile.ErrNotRegular, secretfile.ErrWrongOwner, secretfile.ErrPermissive} {
		if errors.Is(err, rule) {
			t.Errorf("missing file reported as %v", rule)
		}
	}
	want := fmt.Sprintf("secret file %q: open: no such file or directory", p)
	if err.Error() != want {
		t.Errorf("error text %q, want %q", err.Error(), want)
	}
	if err := secretfile.Check(p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Check = %v, want fs.ErrNotExist", err)
	}
}

func TestTooLarge(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		size int64
		ok   bool
	}{
		{"exactly MaxSize", secretfile.MaxSize, true},
		{"one byte over", secretfile.MaxSize + 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, dir, strings.ReplaceAll(tt.name, " ", "_"), "", 0o600)
			if err := os.Truncate(p, tt.size); err != nil {
				t.Fatal(err)
			}
			data, err := secretfile.Read(p)
			if tt.ok {
				if err != nil || int64(len(data)) != tt.size || !bytes.Equal(data[:8], make([]byte, 8)) {
					t.Fatalf("Read = %d bytes, %v; want %d bytes", len(data), err, tt.size)
				}
				return
			}
			if !errors.Is(err, secretfile.ErrTooLarge) {
				t.Fatalf("Read = %v, want ErrTooLarge", err)
			}
			want := fmt.Sprintf("secret file %q: is %d bytes, more than the %d-byte limit for secret files", p, tt.size, secretfile.MaxSize)
			if err.Error() != want {
				t.Errorf("error text %q, want %q", err.Error(), want)
			}
			// Check does not read, so size is not its concern.
			if err := secretfile.Check(p); err != nil {
				t.Errorf("Check = %v, want nil", err)
			}
		})
	}
}

func TestReadLimit(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name  string
		size  int
		limit int64
		ok    bool
	}{
		{"under a small limit", 10, 10, true},
		{"over a small limit", 11, 10, false},
		{"over MaxSize under a larger limit", secretfile.MaxSize + 1, 2 * secretfile.MaxSize, true},
		{"zero limit means MaxSize", secretfile.MaxSize + 1, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, dir, strings.ReplaceAll(tt.name, " ", "_"), strings.Repeat("x", tt.size), 0o600)
			data, err := secretfile.ReadLimit(p, tt.limit)
			if tt.ok != (err == nil) || (tt.ok && len(data) != tt.size) {
				t.Fatalf("ReadLimit = %d bytes, %v; want ok=%v", len(data), err, tt.ok)
			}
			if !tt.ok && !errors.Is(err, secretfile.ErrTooLarge) {
				t.Fatalf("ReadLimit = %v, want ErrTooLarge", err)
			}
		})
	}
}
