//go:build !linux

package audit

import "os"

// datasync flushes the file to stable storage. Outside Linux there is no
// portable fdatasync; os.File.Sync is fsync (F_FULLFSYNC on Darwin).
func datasync(f *os.File) error { return f.Sync() }
