package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/pkg/safefile"
	"github.com/varta-go/varta/pkg/secretfile"
)

// File names inside the state directory.
const (
	AgentsFile = "agents.state"
	ReplayFile = "replay.state"
)

// Dir is a state directory: an existing directory, owned by the daemon's
// effective uid, that no other user can write to.
type Dir struct {
	path string
}

// OpenDir checks path and returns the state directory. A missing directory
// is created with mode 0700 (its parent must exist). The directory must
// not be a symlink, must be owned by the effective uid and must not be
// group- or other-writable: whoever can write there can plant a state
// file.
func OpenDir(path string) (*Dir, error) {
	if path == "" {
		return nil, errors.New("state directory: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("state directory %q: %w", path, err)
	}
	if err := os.Mkdir(abs, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("state directory %q: create: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(abs, &st); err != nil {
		return nil, fmt.Errorf("state directory %q: %w", path, err)
	}
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return nil, fmt.Errorf("state directory %q: is a symlink (must be a real directory)", path)
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return nil, fmt.Errorf("state directory %q: is not a directory", path)
	case st.Uid != uint32(unix.Geteuid()):
		return nil, fmt.Errorf("state directory %q: owned by uid %d, must be owned by uid %d", path, st.Uid, unix.Geteuid())
	case st.Mode&0o022 != 0:
		return nil, fmt.Errorf("state directory %q: mode %04o is group/other-writable (must not be)", path, st.Mode&0o777)
	}
	return &Dir{path: abs}, nil
}

// Path returns the absolute path of the directory.
func (d *Dir) Path() string { return d.path }

// File returns the path of name inside the directory.
func (d *Dir) File(name string) string { return filepath.Join(d.path, name) }

// Read returns the contents of the state file name under the secret-file
// rules, or an error wrapping os.ErrNotExist when there is none.
func (d *Dir) Read(name string, limit int64) ([]byte, error) {
	p := d.File(name)
	data, err := secretfile.ReadLimit(p, limit)
	if err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	return data, nil
}

// Write replaces the state file name with data atomically: the data goes
// to a new temporary file (mode 0600, O_EXCL, no symlink following) in the
// same directory, is fsynced, and is renamed over name; the directory is
// fsynced last. On any error the temporary file is removed and the old
// file is left as it was.
func (d *Dir) Write(name string, data []byte) error {
	target := d.File(name)
	tmp := d.File("." + name + ".tmp" + strconv.Itoa(os.Getpid()))
	if err := safefile.Replace(target, tmp, data, true); err != nil {
		return fmt.Errorf("state file %q: %w", target, err)
	}
	return nil
}

// Remove deletes the state file name; a missing file is not an error.
func (d *Dir) Remove(name string) error {
	if err := os.Remove(d.File(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("state file %q: remove: %w", d.File(name), err)
	}
	return nil
}

// BootIDPath is where Linux publishes the id of the current boot.
const BootIDPath = "/proc/sys/kernel/random/boot_id"

// ReadBootID returns the kernel's boot id, or "" where there is none.
// Process start times are only comparable within one boot.
func ReadBootID() string {
	b, err := os.ReadFile(BootIDPath)
	if err != nil {
		return ""
	}
	s := string(b)
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == ' ') {
		s = s[:len(s)-1]
	}
	if !validBootID(s) {
		return ""
	}
	return s
}
