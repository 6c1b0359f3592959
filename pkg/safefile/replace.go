//go:build unix

package safefile

import (
	"errors"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Replace replaces the file at path with data so that a reader sees either
// the old contents or the new ones, never a mix, an empty file or a
// partial write: the temporary file temp (in path's directory; "" means
// ".NAME.tmp" beside it) is created exclusively with mode 0600 exactly
// (never through a symlink; a leftover at that name, a symlink included,
// is unlinked once and the creation retried), written, optionally fsynced,
// and renamed over path; with sync the directory is fsynced last.
//
// Whatever is at path is replaced, not opened: a symlink there is replaced
// by the file, its target left alone. Callers that must not replace a file
// they would refuse to read check it first (pkg/secretfile.WriteAtomic).
// On an error the temporary file is removed and path is left as it was;
// the error is an *Error whose Op names the step ("create", "write",
// "fsync", "rename", "fsync directory") and whose Path is the file the
// step failed on.
//
// Without sync the rewrite is atomic but not durable: after a power loss
// path may be missing or empty (a liveness file rewritten every tick).
func Replace(path, temp string, data []byte, sync bool) error {
	if temp == "" {
		dir, base := filepath.Split(path)
		temp = filepath.Join(dir, "."+base+".tmp")
	}
	fd, err := createTemp(temp)
	if err != nil {
		return &Error{Path: temp, Op: "create", Err: err}
	}
	werr := writeAll(fd, data)
	if werr == nil && sync {
		if werr = unix.Fsync(fd); werr != nil {
			unix.Close(fd)
			unix.Unlink(temp)
			return &Error{Path: temp, Op: "fsync", Err: werr}
		}
	}
	if err := errors.Join(werr, unix.Close(fd)); err != nil {
		unix.Unlink(temp)
		return &Error{Path: temp, Op: "write", Err: err}
	}
	if err := unix.Rename(temp, path); err != nil {
		unix.Unlink(temp)
		return &Error{Path: path, Op: "rename", Err: err}
	}
	if sync {
		dir := filepath.Dir(path)
		if err := syncDir(dir); err != nil {
			return &Error{Path: dir, Op: "fsync directory", Err: err}
		}
	}
	return nil
}

// createTemp creates name 0600 without following a symlink. A leftover
// from a crash (or anything planted at that name) is unlinked once and the
// creation retried. The umask may clear bits but never adds any; the mode
// is made exact regardless.
func createTemp(name string) (int, error) {
	const flags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NOCTTY
	fd, err := openRetry(name, flags, 0o600)
	if errors.Is(err, unix.EEXIST) {
		if uerr := unix.Unlink(name); uerr != nil && !errors.Is(uerr, unix.ENOENT) {
			return -1, uerr
		}
		fd, err = openRetry(name, flags, 0o600)
	}
	if err != nil {
		return -1, err
	}
	if err := unix.Fchmod(fd, 0o600); err != nil {
		unix.Close(fd)
		unix.Unlink(name)
		return -1, err
	}
	return fd, nil
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

func syncDir(dir string) error {
	fd, err := openRetry(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fsync(fd)
}
