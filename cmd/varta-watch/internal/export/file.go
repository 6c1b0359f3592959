package export

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Rules an events file must satisfy. Open's errors wrap one of these.
var (
	ErrSymlink          = errors.New("is a symbolic link (the events file is never followed through a symlink)")
	ErrNotRegular       = errors.New("is not a regular file")
	ErrNotOwner         = errors.New("is not owned by the observer's user")
	ErrGroupOtherAccess = errors.New("has group or other permission bits (the events file must be mode 0600 or stricter)")
)

// openChecked opens path for appending, creating it 0600, and enforces the
// events-file rules on what was opened (not on what a path lookup saw
// earlier). O_NONBLOCK keeps a FIFO planted at path from blocking the open;
// it is cleared again for the regular file.
func openChecked(path string, uid int) (*os.File, int64, error) {
	fd, err := unix.Open(path, unix.O_CREAT|unix.O_APPEND|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOCTTY|unix.O_NONBLOCK, 0o600)
	if err != nil {
		if fi, lerr := os.Lstat(path); lerr == nil {
			if fi.Mode()&os.ModeSymlink != 0 {
				return nil, 0, fmt.Errorf("events file %q %w", path, ErrSymlink)
			}
			if !fi.Mode().IsRegular() {
				return nil, 0, fmt.Errorf("events file %q %w (%s)", path, ErrNotRegular, fileType(fi.Mode()))
			}
		}
		return nil, 0, fmt.Errorf("open events file %q: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, 0, fmt.Errorf("stat events file %q: %w", path, err)
	}
	if err := checkStat(path, &st, uid); err != nil {
		unix.Close(fd)
		return nil, 0, err
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, 0, fmt.Errorf("events file %q: clear O_NONBLOCK: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), st.Size, nil
}

func checkStat(path string, st *unix.Stat_t, uid int) error {
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("events file %q %w (%s)", path, ErrNotRegular, fileType(modeType(uint32(st.Mode))))
	}
	if int(st.Uid) != uid {
		return fmt.Errorf("events file %q %w (owner uid %d, observer uid %d)", path, ErrNotOwner, st.Uid, uid)
	}
	if perm := uint32(st.Mode) & 0o777; perm&0o077 != 0 {
		return fmt.Errorf("events file %q %w: mode %04o; run chmod 600 on it", path, ErrGroupOtherAccess, perm)
	}
	return nil
}

func modeType(m uint32) os.FileMode {
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		return os.ModeDir
	case unix.S_IFCHR:
		return os.ModeDevice | os.ModeCharDevice
	case unix.S_IFBLK:
		return os.ModeDevice
	case unix.S_IFIFO:
		return os.ModeNamedPipe
	case unix.S_IFSOCK:
		return os.ModeSocket
	case unix.S_IFLNK:
		return os.ModeSymlink
	}
	return os.ModeIrregular
}

func fileType(m os.FileMode) string {
	switch {
	case m&os.ModeDir != 0:
		return "a directory"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a block device"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "not a regular file"
}
