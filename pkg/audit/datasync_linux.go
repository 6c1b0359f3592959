package audit

import (
	"os"

	"golang.org/x/sys/unix"
)

// datasync flushes the file's data (fdatasync) to stable storage.
func datasync(f *os.File) error {
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
