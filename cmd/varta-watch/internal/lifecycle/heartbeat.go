package lifecycle

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/varta-go/varta/pkg/safefile"
)

// HeartbeatFile rewrites a small file with the observer's tick count and
// stall-clock time, atomically: readers see the previous content or the new
// one, never a mix or an empty file. It is safe for concurrent use.
//
// The temporary file is not fsynced: the heartbeat is a liveness signal
// rewritten every tick, not a record; after a crash or power loss its
// content is stale by definition, and an fsync per tick would cost more
// than the rest of the tick. After a power loss a reader may find the file
// missing or empty and must treat that like a stale heartbeat.
type HeartbeatFile struct {
	mu   sync.Mutex
	path string
	tmp  string
	buf  []byte
}

// NewHeartbeatFile checks that path's directory exists and that path is
// not a directory, and returns a HeartbeatFile for it. It does not write.
func NewHeartbeatFile(path string) (*HeartbeatFile, error) {
	if path == "" {
		return nil, errors.New("heartbeat file: empty path")
	}
	dir, base := filepath.Split(path)
	if base == "" {
		return nil, fmt.Errorf("heartbeat file %q: path names a directory", path)
	}
	if dir == "" {
		dir = "."
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("heartbeat file %q: directory: %w", path, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("heartbeat file %q: %q is not a directory", path, dir)
	}
	if fi, err := os.Lstat(path); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("heartbeat file %q: is a directory", path)
	}
	return &HeartbeatFile{
		path: path,
		tmp:  filepath.Join(dir, "."+base+".tmp"),
		buf:  make([]byte, 0, 48),
	}, nil
}

// Path returns the heartbeat file's path.
func (h *HeartbeatFile) Path() string { return h.path }

// Write replaces the file with "<tick> <observerNs>\n", mode 0600: it
// writes a temporary file in the same directory (created exclusively, never
// through a symlink) and renames it over the path.
func (h *HeartbeatFile) Write(tick, observerNs uint64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.buf = strconv.AppendUint(h.buf[:0], tick, 10)
	h.buf = append(h.buf, ' ')
	h.buf = strconv.AppendUint(h.buf, observerNs, 10)
	h.buf = append(h.buf, '\n')

	if err := safefile.Replace(h.path, h.tmp, h.buf, false); err != nil {
		return fmt.Errorf("heartbeat file %q: %w", h.path, err)
	}
	return nil
}
