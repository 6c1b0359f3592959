//go:build !linux

package lifecycle

import (
	"errors"
	"fmt"
	"time"
)

// OpenHardwareWatchdog fails: the watchdog ioctls used here are Linux's.
func OpenHardwareWatchdog(path string, minTimeout time.Duration) (*HardwareWatchdog, error) {
	return nil, fmt.Errorf("hardware watchdog %q: hardware watchdog is only supported on Linux: %w", path, errors.ErrUnsupported)
}
