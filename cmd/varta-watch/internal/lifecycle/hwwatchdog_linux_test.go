package lifecycle

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOpenHardwareWatchdogRefuses(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		wantErr    error
		wantIn     string
	}{
		{"regular file", regular, ErrNotCharDevice, "a regular file"},
		{"directory", dir, ErrNotCharDevice, "a directory"},
		{"missing", filepath.Join(dir, "nope"), os.ErrNotExist, "nope"},
		{"char device without watchdog ioctls", os.DevNull, nil, "WDIOC_GETSUPPORT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := OpenHardwareWatchdog(tt.path, 30*time.Second)
			if err == nil {
				w.Close()
				t.Fatal("OpenHardwareWatchdog succeeded")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.path) || !strings.Contains(err.Error(), tt.wantIn) {
				t.Fatalf("error %q should name %q and %q", err, tt.path, tt.wantIn)
			}
		})
	}
	if b, _ := os.ReadFile(regular); len(b) != 0 {
		t.Fatalf("refused regular file was written: %q", b)
	}
}

// TestHardwareWatchdogSoftdog exercises a real device, but only the Linux
// software watchdog and only when it can neither be left armed for good
// (nowayout=0) nor reboot the machine (soft_noboot=1). Opening a watchdog
// arms it, so anything less certain is skipped; the test never loads the
// module itself.
func TestHardwareWatchdogSoftdog(t *testing.T) {
	const dev = "/dev/watchdog"
	param := func(name string) string {
		b, err := os.ReadFile("/sys/module/softdog/parameters/" + name)
		if err != nil {
			return "unreadable (" + err.Error() + ")"
		}
		return strings.TrimSpace(string(b))
	}
	if _, err := os.Stat("/sys/module/softdog"); err != nil {
		t.Skip("softdog module not loaded (this test never loads it): ", err)
	}
	if v := param("nowayout"); v != "N" && v != "0" {
		t.Skipf("softdog nowayout=%s: an armed watchdog could not be disarmed", v)
	}
	if v := param("soft_noboot"); v != "1" {
		t.Skipf("softdog soft_noboot=%s: a failure could reboot the machine", v)
	}
	id, err := os.ReadFile("/sys/class/watchdog/watchdog0/identity")
	if err != nil || strings.TrimSpace(string(id)) != "Software Watchdog" {
		t.Skipf("%s is not known to be softdog (identity %q, %v)", dev, id, err)
	}
	w, err := OpenHardwareWatchdog(dev, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Timeout() < 30*time.Second {
		t.Fatalf("timeout %v, want at least 30s", w.Timeout())
	}
	for range 3 {
		if err := w.Kick(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Kick(); !errors.Is(err, ErrWatchdogClosed) {
		t.Fatalf("Kick after Close: %v, want ErrWatchdogClosed", err)
	}
}
