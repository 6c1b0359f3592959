package events

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/pkg/safefile"
)

// Rules an events file must satisfy. Open's errors wrap one of these.
var (
	ErrSymlink    = errors.New("is a symbolic link (the events file is never followed through a symlink)")
	ErrNotRegular = errors.New("is not a regular file")
	ErrNotOwner   = errors.New("is not owned by the observer's user")
	// ErrHardLinks: the file has more than one hard link (the same rule as
	// the audit log: another name for the file could be read or kept by
	// someone the file's mode does not admit).
	ErrHardLinks        = errors.New("has more than one hard link")
	ErrGroupOtherAccess = errors.New("has group or other permission bits (the events file must be mode 0600 or stricter; 0640 with --files-group-readable)")
)

// openChecked opens path for appending, creating it 0600 (0640 when
// groupRead), and enforces the events-file rules on what was opened (not on
// what a path lookup saw earlier; pkg/safefile). With groupRead the group
// read bit is set on the open descriptor, whatever the umask. A FIFO
// planted at path does not block the open.
func openChecked(path string, uid int, groupRead bool) (*os.File, int64, error) {
	o := safefile.Options{
		Access:     unix.O_WRONLY | unix.O_APPEND,
		Create:     safefile.CreateIfMissing,
		Perm:       0o600,
		Owner:      uid,
		SingleLink: true,
		Forbidden:  0o077,
	}
	if groupRead {
		o.Perm, o.Forbidden, o.SetBits = 0o640, 0o037, 0o040
	}
	f, info, err := safefile.Open(path, o)
	if err != nil {
		return nil, 0, fileError(path, err, groupRead)
	}
	return f, info.Size, nil
}

// fileError words a refusal of pkg/safefile with this package's sentinels.
func fileError(path string, err error, groupRead bool) error {
	var e *safefile.Error
	if !errors.As(err, &e) {
		return fmt.Errorf("open events file %q: %w", path, err)
	}
	switch e.Rule {
	case safefile.ErrSymlink:
		return fmt.Errorf("events file %q %w", path, ErrSymlink)
	case safefile.ErrNotRegular:
		return fmt.Errorf("events file %q %w (%s)", path, ErrNotRegular, e.Type)
	case safefile.ErrOwner:
		return fmt.Errorf("events file %q %w (owner uid %d, observer uid %d)", path, ErrNotOwner, e.UID, e.Want)
	case safefile.ErrHardLinks:
		return fmt.Errorf("events file %q %w (%d links); remove the other names", path, ErrHardLinks, e.Links)
	case safefile.ErrMode:
		fix := "600"
		if groupRead {
			fix = "640"
		}
		return fmt.Errorf("events file %q %w: mode %04o; run chmod %s on it", path, ErrGroupOtherAccess, e.Perm, fix)
	}
	if e.Op == "open" {
		return fmt.Errorf("open events file %q: %w", path, e.Err)
	}
	return fmt.Errorf("events file %q: %s: %w", path, e.Op, e.Err)
}
