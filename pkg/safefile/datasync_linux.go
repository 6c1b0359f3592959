package safefile

import (
	"os"

	"golang.org/x/sys/unix"
)

// Datasync flushes f's data, and the metadata needed to read it back, to
// stable storage (fdatasync(2)), retrying when a signal interrupts the
// call. The error is an *os.PathError, as (*os.File).Sync's.
func Datasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}
