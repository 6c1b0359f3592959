//go:build unix

package secretfile

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/pkg/safefile"
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
// checks type, owner and mode on the descriptor (pkg/safefile). On success
// it returns the file (positioned at the start, in blocking mode) and its
// size.
func open(path string) (*os.File, int64, error) {
	f, info, err := safefile.Open(path, safefile.Options{
		Access:    unix.O_RDONLY,
		Owner:     unix.Geteuid(),
		Forbidden: 0o077,
	})
	if err != nil {
		return nil, 0, fromSafefile(path, err)
	}
	return f, info.Size, nil
}

// fromSafefile words a refusal of pkg/safefile as a secret-file *Error.
func fromSafefile(path string, err error) error {
	var e *safefile.Error
	if !errors.As(err, &e) {
		return &Error{Path: path, Detail: err.Error(), Err: err}
	}
	switch e.Rule {
	case safefile.ErrSymlink:
		return &Error{Path: path, Rule: ErrSymlink,
			Detail: "is a symlink (secret files must not be symlinks)", Err: e.Err}
	case safefile.ErrNotRegular:
		return &Error{Path: path, Rule: ErrNotRegular,
			Detail: "is " + e.Type + " (secret files must be regular files)", Err: e.Err}
	case safefile.ErrOwner:
		return &Error{Path: path, Rule: ErrWrongOwner,
			Detail: fmt.Sprintf("owned by uid %d, must be owned by uid %d", e.UID, e.Want)}
	case safefile.ErrMode:
		return &Error{Path: path, Rule: ErrPermissive,
			Detail: fmt.Sprintf("mode %04o grants group/other access (must be 0600 or stricter)", e.Perm)}
	}
	return &Error{Path: path, Detail: e.Op + ": " + e.Err.Error(), Err: e.Err}
}
