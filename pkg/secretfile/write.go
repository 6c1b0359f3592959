//go:build unix

package secretfile

import (
	"errors"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/pkg/safefile"
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
	if err := safefile.Replace(path, "", data, true); err != nil {
		var e *safefile.Error
		if errors.As(err, &e) {
			return &Error{Path: path, Detail: e.Op + " " + e.Path + ": " + e.Err.Error(), Err: e.Err}
		}
		return &Error{Path: path, Detail: err.Error(), Err: err}
	}
	return nil
}
