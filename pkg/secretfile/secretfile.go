//go:build unix

package secretfile

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// MaxSize is the largest secret file Read accepts. Secret files hold a key,
// a token or a command line; anything larger is a misconfiguration.
const MaxSize = 1 << 20

// Check opens path the way Read does and applies the same rules, without
// reading the contents.
func Check(path string) error {
	f, _, err := open(path)
	if err != nil {
		return err
	}
	return f.Close()
}

// Read returns the contents of the secret file at path after checking the
// rules on the opened descriptor. Callers should clear the returned slice
// once they have parsed it.
func Read(path string) ([]byte, error) { return ReadLimit(path, MaxSize) }

// ReadLimit is Read with a size limit other than MaxSize, for files the
// daemon writes itself under the same rules (its state files), which grow
// with the number of tracked agents. A limit <= 0 means MaxSize.
func ReadLimit(path string, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = MaxSize
	}
	f, size, err := open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if size > limit {
		return nil, tooLarge(path, size, limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		clear(data)
		return nil, &Error{Path: path, Detail: "read: " + err.Error(), Err: err}
	}
	if int64(len(data)) > limit {
		clear(data)
		return nil, tooLarge(path, int64(len(data)), limit)
	}
	return data, nil
}

func tooLarge(path string, size, limit int64) error {
	return &Error{Path: path, Rule: ErrTooLarge,
		Detail: fmt.Sprintf("is %d bytes, more than the %d-byte limit for secret files", size, limit)}
}

// open opens path without following a symlink at the last component and
// checks type, owner and mode on the descriptor. On success it returns the
// file (positioned at the start, in blocking mode) and its size.
func open(path string) (*os.File, int64, error) {
	// O_NONBLOCK keeps a FIFO from blocking the open until a writer
	// appears; O_NOCTTY keeps a terminal from becoming the controlling
	// one. Both only matter for files the checks below reject.
	const flags = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC | unix.O_NOCTTY
	var fd int
	var err error
	for {
		fd, err = unix.Open(path, flags, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, 0, openError(path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, 0, &Error{Path: path, Detail: "fstat: " + err.Error(), Err: err}
	}
	if err := checkStat(path, &st, uint32(unix.Geteuid())); err != nil {
		unix.Close(fd)
		return nil, 0, err
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, 0, &Error{Path: path, Detail: "set blocking mode: " + err.Error(), Err: err}
	}
	return os.NewFile(uintptr(fd), path), st.Size, nil
}

// openError turns a failed open into an *Error. O_NOFOLLOW on a symlink
// fails with ELOOP (Linux, macOS) or EMLINK (FreeBSD), and opening a socket
// fails with ENXIO or EOPNOTSUPP; an Lstat of the path names the file type
// in those cases. The Lstat only shapes the message: the refusal itself
// comes from the failed open.
func openError(path string, err error) error {
	var st unix.Stat_t
	if unix.Lstat(path, &st) == nil {
		switch mode := uint32(st.Mode); mode & unix.S_IFMT {
		case unix.S_IFREG:
		case unix.S_IFLNK:
			return &Error{Path: path, Rule: ErrSymlink,
				Detail: "is a symlink (secret files must not be symlinks)", Err: err}
		default:
			return &Error{Path: path, Rule: ErrNotRegular,
				Detail: typeName(mode) + " (secret files must be regular files)", Err: err}
		}
	}
	return &Error{Path: path, Detail: "open: " + err.Error(), Err: err}
}

// checkStat applies the type, owner and mode rules in that order.
func checkStat(path string, st *unix.Stat_t, euid uint32) error {
	mode := uint32(st.Mode)
	if mode&unix.S_IFMT != unix.S_IFREG {
		return &Error{Path: path, Rule: ErrNotRegular,
			Detail: typeName(mode) + " (secret files must be regular files)"}
	}
	if st.Uid != euid {
		return &Error{Path: path, Rule: ErrWrongOwner,
			Detail: fmt.Sprintf("owned by uid %d, must be owned by uid %d", st.Uid, euid)}
	}
	if perm := mode & 0o777; perm&0o077 != 0 {
		return &Error{Path: path, Rule: ErrPermissive,
			Detail: fmt.Sprintf("mode %04o grants group/other access (must be 0600 or stricter)", perm)}
	}
	return nil
}

func typeName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "is a directory"
	case unix.S_IFIFO:
		return "is a named pipe"
	case unix.S_IFSOCK:
		return "is a socket"
	case unix.S_IFCHR:
		return "is a character device"
	case unix.S_IFBLK:
		return "is a block device"
	case unix.S_IFLNK:
		return "is a symlink"
	}
	return fmt.Sprintf("has file type %#o", mode&unix.S_IFMT)
}
