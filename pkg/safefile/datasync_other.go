//go:build !linux

package safefile

import "os"

// Datasync flushes f to stable storage. Outside Linux there is no portable
// fdatasync; (*os.File).Sync is fsync (F_FULLFSYNC on Darwin) and retries
// on EINTR itself.
func Datasync(f *os.File) error { return f.Sync() }
