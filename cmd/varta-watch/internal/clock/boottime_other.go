//go:build !linux

package clock

import "golang.org/x/sys/unix"

// boottimeNanos falls back to CLOCK_MONOTONIC where CLOCK_BOOTTIME does not
// exist.
func boottimeNanos() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano()
}
