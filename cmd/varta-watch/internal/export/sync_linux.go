package export

import (
	"os"

	"golang.org/x/sys/unix"
)

// datasync flushes the file's data (not all of its metadata) to stable
// storage.
func datasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
