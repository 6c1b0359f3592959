package export

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
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
// what a path lookup saw earlier). With groupRead the group read bit is
// set on the open descriptor, whatever the umask. O_NONBLOCK keeps a FIFO planted at path from blocking the open;
// it is cleared again for the regular file.
func openChecked(path string, uid int, groupRead bool) (*os.File, int64, error) {
	perm := uint32(0o600)
	if groupRead {
		perm = 0o640
	}
	fd, err := unix.Open(path, unix.O_CREAT|unix.O_APPEND|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOCTTY|unix.O_NONBLOCK, perm)
	if err != nil {
		var st unix.Stat_t
		if unix.Lstat(path, &st) == nil {
			switch st.Mode & unix.S_IFMT {
			case unix.S_IFREG:
			case unix.S_IFLNK:
				return nil, 0, fmt.Errorf("events file %q %w", path, ErrSymlink)
			default:
				return nil, 0, fmt.Errorf("events file %q %w (%s)", path, ErrNotRegular, fileType(uint32(st.Mode)))
			}
		}
		return nil, 0, fmt.Errorf("open events file %q: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, 0, fmt.Errorf("stat events file %q: %w", path, err)
	}
	if err := checkStat(path, &st, uid, groupRead); err != nil {
		unix.Close(fd)
		return nil, 0, err
	}
	if cur := uint32(st.Mode) & 0o777; groupRead && cur&0o040 == 0 {
		if err := unix.Fchmod(fd, cur|0o040); err != nil {
			unix.Close(fd)
			return nil, 0, fmt.Errorf("events file %q: make it group-readable: %w", path, err)
		}
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, 0, fmt.Errorf("events file %q: clear O_NONBLOCK: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), st.Size, nil
}

func checkStat(path string, st *unix.Stat_t, uid int, groupRead bool) error {
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("events file %q %w (%s)", path, ErrNotRegular, fileType(uint32(st.Mode)))
	}
	if int(st.Uid) != uid {
		return fmt.Errorf("events file %q %w (owner uid %d, observer uid %d)", path, ErrNotOwner, st.Uid, uid)
	}
	if n := uint64(st.Nlink); n != 1 {
		return fmt.Errorf("events file %q %w (%d links); remove the other names", path, ErrHardLinks, n)
	}
	forbidden, fix := uint32(0o077), "600"
	if groupRead {
		forbidden, fix = 0o037, "640"
	}
	if perm := uint32(st.Mode) & 0o777; perm&forbidden != 0 {
		return fmt.Errorf("events file %q %w: mode %04o; run chmod %s on it", path, ErrGroupOtherAccess, perm, fix)
	}
	return nil
}

// fileType names the file type in mode (a stat st_mode).
func fileType(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFIFO:
		return "a named pipe"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFLNK:
		return "a symbolic link"
	}
	return "not a regular file"
}
