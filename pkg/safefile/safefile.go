//go:build unix

package safefile

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// The rules a file can break. Every *Error for a rule wraps one of these.
var (
	ErrSymlink    = errors.New("is a symbolic link")
	ErrNotRegular = errors.New("is not a regular file")
	ErrOwner      = errors.New("is not owned by the required user")
	ErrHardLinks  = errors.New("has more than one hard link")
	ErrMode       = errors.New("has forbidden permission bits")
)

// Create says whether Open may create the file.
type Create int

const (
	// MustExist never creates: a missing file is an open error (ENOENT).
	MustExist Create = iota
	// CreateIfMissing creates the file with Options.Perm when it does not
	// exist and opens it otherwise; Info.Created tells which.
	CreateIfMissing
	// CreateExclusive only creates: an existing file (or anything else at
	// the path, a symlink included) is an open error (EEXIST).
	CreateExclusive
)

// AnyOwner as Options.Owner skips the owner rule.
const AnyOwner = -1

// Options are the rules and the access of one Open.
type Options struct {
	// Access is unix.O_RDONLY, O_WRONLY or O_RDWR, optionally with
	// O_APPEND. Open adds O_NOFOLLOW, O_CLOEXEC, O_NOCTTY and O_NONBLOCK
	// (cleared again once the checks pass) and, per Create, O_CREAT and
	// O_EXCL.
	Access int
	Create Create
	// Perm is the mode of a created file (the umask applies; SetBits are
	// added afterwards).
	Perm uint32
	// Owner is the uid that must own the file, or AnyOwner. There is no
	// default: 0 means root.
	Owner int
	// SingleLink requires exactly one hard link: another name for the
	// file could be read or kept by someone its mode does not admit.
	SingleLink bool
	// Forbidden are permission bits that must be clear (e.g. 0o077: no
	// group or other access).
	Forbidden uint32
	// SetBits are permission bits set on the descriptor after the checks
	// when they are not set already (e.g. 0o040, group read).
	SetBits uint32
}

// Info describes the file Open returned.
type Info struct {
	Size    int64
	Perm    uint32 // permission bits, SetBits included
	Created bool   // Open created the file
}

// Error reports a file that breaks a rule (Rule is a sentinel), or a
// system call that failed (Rule is nil; Op names the call). The other
// fields say what was found.
type Error struct {
	Path string
	Rule error
	Op   string // "open", "fstat", "fchmod", "set blocking mode" when Rule is nil
	Err  error  // the system error, if any (also set for a refused open)

	Type  string // ErrNotRegular: the file type found, e.g. "a directory" (TypeName)
	UID   uint32 // ErrOwner: the file's owner
	Want  int    // ErrOwner: the required owner
	Links uint64 // ErrHardLinks: the link count
	Perm  uint32 // ErrMode: the permission bits found
	Bad   uint32 // ErrMode: the forbidden bits among them
}

func (e *Error) Error() string {
	p := "file " + strconv.Quote(e.Path) + " "
	switch e.Rule {
	case ErrSymlink:
		return p + "is a symbolic link (it is never followed)"
	case ErrNotRegular:
		return p + "is not a regular file (" + e.Type + ")"
	case ErrOwner:
		return fmt.Sprintf("%sis owned by uid %d, must be owned by uid %d", p, e.UID, e.Want)
	case ErrHardLinks:
		return fmt.Sprintf("%shas %d hard links, must have exactly one", p, e.Links)
	case ErrMode:
		return fmt.Sprintf("%shas mode %04o; the permission bits %04o are not allowed", p, e.Perm, e.Bad)
	}
	return e.Op + " " + p[:len(p)-1] + ": " + errString(e.Err)
}

func errString(err error) string {
	if err == nil {
		return "failed"
	}
	return err.Error()
}

// Unwrap returns the rule and the system error, whichever are set.
func (e *Error) Unwrap() []error {
	errs := make([]error, 0, 2)
	if e.Rule != nil {
		errs = append(errs, e.Rule)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// Open opens path under o's rules and returns the file in blocking mode,
// positioned at its start (at its end for writes with O_APPEND).
func Open(path string, o Options) (*os.File, Info, error) {
	flags := o.Access | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK
	fd, created, err := openFD(path, flags, o.Create, o.Perm)
	if err != nil {
		return nil, Info{}, openError(path, err)
	}
	info, err := check(fd, path, o)
	if err == nil {
		if err = unix.SetNonblock(fd, false); err != nil {
			err = &Error{Path: path, Op: "set blocking mode", Err: err}
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, Info{}, err
	}
	info.Created = created
	return os.NewFile(uintptr(fd), path), info, nil
}

// openFD opens path per create. CreateIfMissing tries an exclusive create
// first, so that it knows whether it created the file, and opens the
// existing file otherwise; a file removed between the two is created on
// the next round.
func openFD(path string, flags int, create Create, perm uint32) (fd int, created bool, err error) {
	switch create {
	case MustExist:
		fd, err = openRetry(path, flags, 0)
		return fd, false, err
	case CreateExclusive:
		fd, err = openRetry(path, flags|unix.O_CREAT|unix.O_EXCL, perm)
		return fd, err == nil, err
	}
	for range 8 {
		fd, err = openRetry(path, flags|unix.O_CREAT|unix.O_EXCL, perm)
		if err == nil {
			return fd, true, nil
		}
		if !errors.Is(err, unix.EEXIST) {
			return -1, false, err
		}
		fd, err = openRetry(path, flags, 0)
		if !errors.Is(err, unix.ENOENT) {
			return fd, false, err
		}
	}
	return -1, false, err
}

func openRetry(path string, flags int, perm uint32) (int, error) {
	for {
		fd, err := unix.Open(path, flags, perm)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// openError turns a failed open into an *Error. O_NOFOLLOW on a symlink
// fails with ELOOP (Linux, macOS) or EMLINK (FreeBSD); opening a directory
// for writing fails with EISDIR, a socket with ENXIO. An Lstat of the path
// names the rule in those cases; it only shapes the message: the refusal
// itself comes from the failed open.
func openError(path string, err error) error {
	var st unix.Stat_t
	if unix.Lstat(path, &st) == nil {
		switch mode := uint32(st.Mode); mode & unix.S_IFMT {
		case unix.S_IFREG:
		case unix.S_IFLNK:
			return &Error{Path: path, Rule: ErrSymlink, Err: err}
		default:
			return &Error{Path: path, Rule: ErrNotRegular, Type: TypeName(mode), Err: err}
		}
	}
	return &Error{Path: path, Op: "open", Err: err}
}

// check applies the rules to the open descriptor, in the order type,
// owner, links, mode, then sets o.SetBits.
func check(fd int, path string, o Options) (Info, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return Info{}, &Error{Path: path, Op: "fstat", Err: err}
	}
	mode := uint32(st.Mode)
	if mode&unix.S_IFMT != unix.S_IFREG {
		return Info{}, &Error{Path: path, Rule: ErrNotRegular, Type: TypeName(mode)}
	}
	if o.Owner != AnyOwner && int64(st.Uid) != int64(o.Owner) {
		return Info{}, &Error{Path: path, Rule: ErrOwner, UID: st.Uid, Want: o.Owner}
	}
	if n := uint64(st.Nlink); o.SingleLink && n != 1 {
		return Info{}, &Error{Path: path, Rule: ErrHardLinks, Links: n}
	}
	perm := mode & 0o777
	if bad := perm & o.Forbidden; bad != 0 {
		return Info{}, &Error{Path: path, Rule: ErrMode, Perm: perm, Bad: bad}
	}
	if perm&o.SetBits != o.SetBits {
		if err := unix.Fchmod(fd, perm|o.SetBits); err != nil {
			return Info{}, &Error{Path: path, Op: "fchmod", Err: err}
		}
		perm |= o.SetBits
	}
	return Info{Size: st.Size, Perm: perm}, nil
}

// TypeName names the file type of a stat st_mode, e.g. "a directory".
func TypeName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "a regular file"
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
	return fmt.Sprintf("file type %#o", mode&unix.S_IFMT)
}
