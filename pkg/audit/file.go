package audit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/pkg/safefile"
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
// with exactly one hard link (pkg/safefile), and takes an exclusive
// non-blocking flock.
//
// mode: openExisting never creates; openCreate creates (0600) when missing;
// openExclusive only creates (the file must not exist). groupRead
// (--files-group-readable) creates it 0640 instead and adds the group read
// bit to an existing file, whatever the umask.
func openAuditFile(path string, mode openMode, groupRead bool) (f *os.File, created bool, err error) {
	o := writerRules(path)
	o.Create = safefile.Create(mode)
	if groupRead {
		o.Perm, o.SetBits = 0o640, 0o040
	}
	f, info, err := safefile.Open(path, o)
	if err != nil {
		return nil, false, fileError(path, err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, false, err
	}
	return f, info.Created, nil
}

// writerRules are the file rules of docs/audit.md ("How varta-watch
// writes it") for the files the writer keeps: the log and its seq note.
func writerRules(path string) safefile.Options {
	return safefile.Options{
		Access:     unix.O_RDWR | unix.O_APPEND,
		Perm:       0o600,
		Owner:      os.Geteuid(),
		SingleLink: true,
	}
}

type openMode safefile.Create

const (
	openExisting  = openMode(safefile.MustExist)
	openCreate    = openMode(safefile.CreateIfMissing)
	openExclusive = openMode(safefile.CreateExclusive)
)

// fileError words a refusal of pkg/safefile with this package's sentinels.
func fileError(path string, err error) error {
	var e *safefile.Error
	if !errors.As(err, &e) {
		return fmt.Errorf("open audit file %q: %w", path, err)
	}
	switch e.Rule {
	case safefile.ErrSymlink:
		return fmt.Errorf("open audit file %q: %w", path, ErrSymlink)
	case safefile.ErrNotRegular:
		return fmt.Errorf("open audit file %q: %s: %w", path, e.Type, ErrNotRegular)
	case safefile.ErrOwner:
		return fmt.Errorf("open audit file %q: owned by uid %d, we run as uid %d: %w", path, e.UID, e.Want, ErrNotOwner)
	case safefile.ErrHardLinks:
		return fmt.Errorf("open audit file %q: %d hard links: %w", path, e.Links, ErrHardLinks)
	case nil:
		if e.Op == "open" {
			return fmt.Errorf("open audit file %q: %w", path, &os.PathError{Op: "open", Path: path, Err: e.Err})
		}
	}
	return fmt.Errorf("open audit file %q: %w", path, err)
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
	f, _, err := safefile.Open(path, safefile.Options{Access: unix.O_RDONLY, Owner: safefile.AnyOwner})
	if err != nil {
		return nil, fileError(path, err)
	}
	return f, nil
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

// groupReadable reports whether f has the group read bit, so that files
// made by rotation keep the mode of the file they replace.
func groupReadable(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode().Perm()&0o040 != 0
}
