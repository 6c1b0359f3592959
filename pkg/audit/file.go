package audit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// Generations is how many rotated generations are kept (PATH.1 … PATH.5).
const Generations = 5

// GenerationPath returns PATH.n, or PATH for n == 0.
func GenerationPath(path string, n int) string {
	if n == 0 {
		return path
	}
	return path + "." + strconv.Itoa(n)
}

// openAuditFile opens path read+append with no symlink at the last
// component, checks that it is a regular file owned by our effective uid
// with exactly one hard link, and takes an exclusive non-blocking flock.
//
// mode: openExisting never creates; openCreate creates (0600) when missing;
// openExclusive only creates (the file must not exist). groupRead
// (--files-group-readable) creates it 0640 instead and adds the group read
// bit to an existing file, whatever the umask.
func openAuditFile(path string, mode openMode, groupRead bool) (f *os.File, created bool, err error) {
	const flags = unix.O_RDWR | unix.O_APPEND | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NONBLOCK
	perm := uint32(0o600)
	if groupRead {
		perm = 0o640
	}
	fd := -1
	if mode != openExisting {
		fd, err = unix.Open(path, flags|unix.O_CREAT|unix.O_EXCL, perm)
		switch {
		case err == nil:
			created = true
		case errors.Is(err, unix.EEXIST) && mode == openCreate:
			fd = -1
		default:
			return nil, false, openErr(path, err)
		}
	}
	if fd < 0 {
		if fd, err = unix.Open(path, flags, 0); err != nil {
			return nil, false, openErr(path, err)
		}
	}
	if err := checkAuditFD(fd, path); err != nil {
		unix.Close(fd)
		return nil, false, err
	}
	if groupRead {
		if err := addGroupRead(fd, path); err != nil {
			unix.Close(fd)
			return nil, false, err
		}
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, false, fmt.Errorf("open audit file %q: %w", path, err)
	}
	f = os.NewFile(uintptr(fd), path)
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, false, err
	}
	return f, created, nil
}

type openMode int

const (
	openExisting openMode = iota
	openCreate
	openExclusive
)

func openErr(path string, err error) error {
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EMLINK) || errors.Is(err, unix.EFTYPE) {
		if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("open audit file %q: %w", path, ErrSymlink)
		}
	}
	return fmt.Errorf("open audit file %q: %w", path, &os.PathError{Op: "open", Path: path, Err: err})
}

// checkAuditFD enforces the file rules of docs/audit.md ("How varta-watch writes it") on an open descriptor.
func checkAuditFD(fd int, path string) error {
	st, err := statRegular(fd, path)
	if err != nil {
		return err
	}
	if uid := os.Geteuid(); int64(st.Uid) != int64(uid) {
		return fmt.Errorf("open audit file %q: owned by uid %d, we run as uid %d: %w", path, st.Uid, uid, ErrNotOwner)
	}
	if n := uint64(st.Nlink); n != 1 {
		return fmt.Errorf("open audit file %q: %d hard links: %w", path, n, ErrHardLinks)
	}
	return nil
}

// statRegular fstats fd and checks that it is a regular file.
func statRegular(fd int, path string) (unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return st, fmt.Errorf("stat audit file %q: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return st, fmt.Errorf("open audit file %q: %w", path, ErrNotRegular)
	}
	return st, nil
}

// lockFile takes the exclusive advisory lock without waiting.
func lockFile(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EWOULDBLOCK):
			return fmt.Errorf("lock audit file %q: %w", f.Name(), ErrLocked)
		default:
			return fmt.Errorf("lock audit file %q: %w", f.Name(), err)
		}
	}
}

// openReadOnly opens a file for reading with no symlink at the last
// component and checks that it is a regular file (readers do not require
// ownership: an auditor may read a copy).
func openReadOnly(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, openErr(path, err)
	}
	if _, err := statRegular(fd, path); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("open audit file %q: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// syncDir fsyncs the directory holding path, so that creations and renames
// in it are durable.
func syncDir(path string) error {
	dir := filepath.Dir(path)
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open audit directory %q: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync audit directory %q: %w", dir, err)
	}
	return nil
}

// copyFile copies src (from offset 0) into a new file dst (exclusive, 0600
// or 0640 like src, no symlink), syncs it and returns it open, locked,
// positioned for append.
func copyFile(src *os.File, dst string) (*os.File, error) {
	out, _, err := openAuditFile(dst, openExclusive, groupReadable(src))
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*os.File, error) {
		out.Close()
		os.Remove(dst)
		return nil, err
	}
	if _, err := io.Copy(out, io.NewSectionReader(src, 0, 1<<62)); err != nil {
		return fail(fmt.Errorf("copy audit file to %q: %w", dst, err))
	}
	if err := out.Sync(); err != nil {
		return fail(fmt.Errorf("sync audit file %q: %w", dst, err))
	}
	return out, nil
}

// addGroupRead sets the group read bit on fd (never group write or any
// other bit).
func addGroupRead(fd int, path string) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat audit file %q: %w", path, err)
	}
	if cur := uint32(st.Mode) & 0o777; cur&0o040 == 0 {
		if err := unix.Fchmod(fd, cur|0o040); err != nil {
			return fmt.Errorf("audit file %q: make it group-readable: %w", path, err)
		}
	}
	return nil
}

// groupReadable reports whether f has the group read bit, so that files
// made by rotation keep the mode of the file they replace.
func groupReadable(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode().Perm()&0o040 != 0
}
