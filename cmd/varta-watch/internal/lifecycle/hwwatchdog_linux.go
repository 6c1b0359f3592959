package lifecycle

import (
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// OpenHardwareWatchdog opens the watchdog device at path, which arms it,
// and makes sure its timeout is at least minTimeout (rounded up to whole
// seconds), raising it with WDIOC_SETTIMEOUT when it is lower. path must be
// a character device that answers WDIOC_GETSUPPORT; errors name the path and
// the rule or ioctl that failed. A device that fails after it was armed is
// disarmed with the magic close before the error is returned.
func OpenHardwareWatchdog(path string, minTimeout time.Duration) (*HardwareWatchdog, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("hardware watchdog %q: %w", path, err)
	}
	if fi.Mode()&os.ModeCharDevice == 0 {
		return nil, fmt.Errorf("hardware watchdog %q %w: it is %s", path, ErrNotCharDevice, fileKind(fi.Mode()))
	}
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("hardware watchdog %q: open: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
		unix.Close(fd)
		return nil, fmt.Errorf("hardware watchdog %q %w (it changed while being opened)", path, ErrNotCharDevice)
	}
	// Identify the device first. Something that does not answer
	// WDIOC_GETSUPPORT is not a watchdog, was not armed by the open, and
	// must not be written to.
	info, err := unix.IoctlGetWatchdogInfo(fd)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("hardware watchdog %q: ioctl WDIOC_GETSUPPORT: %w (not a watchdog device?)", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	fail := func(err error) (*HardwareWatchdog, error) {
		if cerr := disarmClose(f, path); cerr != nil {
			err = fmt.Errorf("%w; %w", err, cerr)
		}
		return nil, err
	}
	want := int((minTimeout + time.Second - 1) / time.Second)
	cur, err := unix.IoctlGetInt(fd, unix.WDIOC_GETTIMEOUT)
	if err != nil {
		return fail(fmt.Errorf("hardware watchdog %q: ioctl WDIOC_GETTIMEOUT: %w", path, err))
	}
	if cur < want {
		if info.Options&unix.WDIOF_SETTIMEOUT == 0 {
			return fail(fmt.Errorf("hardware watchdog %q: timeout is %ds, below the required %ds, and the driver cannot change it (no WDIOF_SETTIMEOUT)", path, cur, want))
		}
		if err := unix.IoctlSetPointerInt(fd, unix.WDIOC_SETTIMEOUT, want); err != nil {
			return fail(fmt.Errorf("hardware watchdog %q: ioctl WDIOC_SETTIMEOUT %ds: %w", path, want, err))
		}
		if cur, err = unix.IoctlGetInt(fd, unix.WDIOC_GETTIMEOUT); err != nil {
			return fail(fmt.Errorf("hardware watchdog %q: ioctl WDIOC_GETTIMEOUT: %w", path, err))
		}
		if cur < want {
			return fail(fmt.Errorf("hardware watchdog %q: WDIOC_SETTIMEOUT %ds left the timeout at %ds (the device's maximum?)", path, want, cur))
		}
	}
	return &HardwareWatchdog{
		f:        f,
		path:     path,
		timeout:  time.Duration(cur) * time.Second,
		identity: strings.TrimRight(string(info.Identity[:]), "\x00"),
	}, nil
}
