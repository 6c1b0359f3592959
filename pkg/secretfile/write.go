//go:build unix

package secretfile

import (
	"errors"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// WriteAtomic replaces the secret file at path with data so that a reader
// (or a crash) sees either the old contents or the new ones, never a mix,
// an empty file or a partial write: a temporary file in the same directory
// is created exclusively (mode 0600, never through a symlink), written,
// fsynced and renamed over path, then the directory is fsynced.
//
// An existing path must already satisfy the secret-file rules (a regular
// file, not a symlink, owned by the effective uid, no group/other bits):
// WriteAtomic never replaces something it would refuse to read.
func WriteAtomic(path string, data []byte) error {
	if err := Check(path); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp := filepath.Join(dir, "."+base+".tmp")
	fd, err := createExclusive(tmp)
	if err != nil {
		return &Error{Path: path, Detail: "create temporary file " + tmp + ": " + err.Error(), Err: err}
	}
	f := os.NewFile(uintptr(fd), tmp)
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		unix.Unlink(tmp)
		return &Error{Path: path, Detail: "write temporary file " + tmp + ": " + err.Error(), Err: err}
	}
	if err := unix.Rename(tmp, path); err != nil {
		unix.Unlink(tmp)
		return &Error{Path: path, Detail: "rename " + tmp + ": " + err.Error(), Err: err}
	}
	if err := syncDir(dir); err != nil {
		return &Error{Path: path, Detail: "fsync directory " + dir + ": " + err.Error(), Err: err}
	}
	return nil
}

// createExclusive creates name 0600 without following a symlink. A leftover
// from a crash (or anything planted at that name, a symlink included) is
// unlinked once and the creation retried.
func createExclusive(name string) (int, error) {
	const flags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NOCTTY
	fd, err := unix.Open(name, flags, 0o600)
	if errors.Is(err, unix.EEXIST) {
		if uerr := unix.Unlink(name); uerr != nil && !errors.Is(uerr, unix.ENOENT) {
			return -1, uerr
		}
		fd, err = unix.Open(name, flags, 0o600)
	}
	if err != nil {
		return -1, err
	}
	// The umask may have cleared bits but never adds any; make the mode
	// exact regardless.
	if err := unix.Fchmod(fd, 0o600); err != nil {
		unix.Close(fd)
		unix.Unlink(name)
		return -1, err
	}
	return fd, nil
}

func syncDir(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fsync(fd)
}
