//go:build !linux

package listener

import (
	"errors"
	"os"
)

// InheritUnix is implemented on Linux only: elsewhere the observer binds
// its own socket.
func InheritUnix(f *os.File, _ UnixOptions) (*Unix, error) {
	f.Close()
	return nil, errors.New("socket activation (LISTEN_FDS) is supported on Linux only")
}
