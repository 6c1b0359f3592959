package lifecycle

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// Errors of OpenHardwareWatchdog and HardwareWatchdog.
var (
	ErrNotCharDevice  = errors.New("is not a character device (the hardware watchdog must be one, e.g. /dev/watchdog)")
	ErrWatchdogClosed = errors.New("hardware watchdog already closed")
)

// HardwareWatchdog is an open, armed watchdog device. Kick it at least once
// per Timeout; Close disarms it with the magic close. It is safe for
// concurrent use.
type HardwareWatchdog struct {
	mu       sync.Mutex
	f        *os.File
	path     string
	timeout  time.Duration
	identity string
}

// Timeout returns the device's timeout after OpenHardwareWatchdog raised it.
func (h *HardwareWatchdog) Timeout() time.Duration { return h.timeout }

// Identity returns the driver's identity string (WDIOC_GETSUPPORT).
func (h *HardwareWatchdog) Identity() string { return h.identity }

// Kick writes one byte to the device, restarting its countdown.
func (h *HardwareWatchdog) Kick() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f == nil {
		return fmt.Errorf("hardware watchdog %q: %w", h.path, ErrWatchdogClosed)
	}
	if _, err := h.f.Write([]byte{'1'}); err != nil {
		return fmt.Errorf("hardware watchdog %q: kick: %w", h.path, err)
	}
	return nil
}

// Close writes the magic character 'V' and closes the device, which
// disarms it (unless the driver was loaded with nowayout=1, in which case
// nothing can). Later calls do nothing.
func (h *HardwareWatchdog) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f == nil {
		return nil
	}
	f := h.f
	h.f = nil
	return disarmClose(f, h.path)
}

func disarmClose(f *os.File, path string) error {
	_, werr := f.Write([]byte{'V'})
	cerr := f.Close()
	if werr != nil {
		return fmt.Errorf("hardware watchdog %q: magic close (write 'V'): %w; the watchdog stays armed", path, werr)
	}
	if cerr != nil {
		return fmt.Errorf("hardware watchdog %q: close: %w", path, cerr)
	}
	return nil
}

func fileKind(m os.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m.IsDir():
		return "a directory"
	case m&os.ModeDevice != 0 && m&os.ModeCharDevice == 0:
		return "a block device"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeSocket != 0:
		return "a socket"
	}
	return "not a character device"
}
