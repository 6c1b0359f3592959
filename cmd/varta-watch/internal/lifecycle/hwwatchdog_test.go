package lifecycle

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestHardwareWatchdogBytes checks the byte protocol of an open watchdog
// against a regular file standing in for the device: one non-'V' byte per
// kick, the magic 'V' on Close, nothing after.
func TestHardwareWatchdogBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fake-watchdog")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	w := &HardwareWatchdog{f: f, path: path}
	for range 3 {
		if err := w.Kick(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := w.Kick(); !errors.Is(err, ErrWatchdogClosed) {
		t.Fatalf("Kick after Close: %v, want ErrWatchdogClosed", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "111V" {
		t.Fatalf("device received %q, want three kicks then the magic V", b)
	}
}
