package lifecycle

import (
	"path/filepath"
	"testing"
)

// BenchmarkHeartbeatFileWrite is the cost of one heartbeat rewrite
// (create, write, close, rename) on the test machine's temp file system.
func BenchmarkHeartbeatFileWrite(b *testing.B) {
	h, err := NewHeartbeatFile(filepath.Join(b.TempDir(), "heartbeat"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var tick uint64
	for b.Loop() {
		tick++
		if err := h.Write(tick, tick*1000); err != nil {
			b.Fatal(err)
		}
	}
}
