package keygen

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"syscall"
)

// ErrExists is returned (wrapped) when the path already exists.
var ErrExists = errors.New("refusing to overwrite an existing file")

// Write creates path (O_EXCL, no symlink following) with mode 0600 and
// writes a new random key to it.
func Write(path string) error {
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return fmt.Errorf("generate key: %w", err)
	}
	line := make([]byte, 65)
	hex.Encode(line, key[:])
	line[64] = '\n'

	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("write key file %q: %w", path, ErrExists)
		}
		return fmt.Errorf("create key file %q: %w", path, err)
	}
	// The umask may have cleared bits but never adds any; make the mode
	// exact anyway.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("chmod key file %q: %w", path, err)
	}
	if _, err := f.Write(line); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("write key file %q: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("sync key file %q: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("close key file %q: %w", path, err)
	}
	return nil
}
