package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// Identity pins a process: the pid namespace it lives in and its start
// time in clock ticks since boot (field 22 of /proc/<pid>/stat).
type Identity struct {
	NSInode    uint64
	Generation uint64
}

// ErrGone reports that the process no longer exists.
var ErrGone = errors.New("process is gone")

// FS reads a proc filesystem mounted at Root ("/proc" by default).
type FS struct{ Root string }

// Default is the host's /proc.
var Default = FS{Root: "/proc"}

// Identity reads pid's namespace inode and start time.
func (fs FS) Identity(pid uint32) (Identity, error) {
	gen, err := fs.StartTime(pid)
	if err != nil {
		return Identity{}, err
	}
	ns, err := fs.PidNamespace(pid)
	if err != nil {
		return Identity{}, err
	}
	return Identity{NSInode: ns, Generation: gen}, nil
}

// PidNamespace returns the inode of /proc/<pid>/ns/pid.
func (fs FS) PidNamespace(pid uint32) (uint64, error) {
	var st syscall.Stat_t
	p := fs.Root + "/" + strconv.FormatUint(uint64(pid), 10) + "/ns/pid"
	if err := syscall.Stat(p, &st); err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ESRCH) {
			return 0, fmt.Errorf("pid %d: %w", pid, ErrGone)
		}
		return 0, fmt.Errorf("stat %s: %w", p, err)
	}
	return uint64(st.Ino), nil
}

// SelfPidNamespace returns the inode of the observer's own pid namespace.
func (fs FS) SelfPidNamespace() (uint64, error) {
	var st syscall.Stat_t
	p := fs.Root + "/self/ns/pid"
	if err := syscall.Stat(p, &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", p, err)
	}
	return uint64(st.Ino), nil
}

// StartTime returns field 22 of /proc/<pid>/stat.
func (fs FS) StartTime(pid uint32) (uint64, error) {
	p := fs.Root + "/" + strconv.FormatUint(uint64(pid), 10) + "/stat"
	b, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return 0, fmt.Errorf("pid %d: %w", pid, ErrGone)
		}
		return 0, fmt.Errorf("read %s: %w", p, err)
	}
	return ParseStartTime(b)
}

// ParseStartTime extracts field 22 (starttime) from the contents of a
// /proc/<pid>/stat file. The command name (field 2) may contain spaces and
// parentheses, so parsing starts after the last ')'.
func ParseStartTime(stat []byte) (uint64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("proc stat: no ')' after the command name")
	}
	fields := bytes.Fields(stat[i+1:])
	// fields[0] is field 3 (state); field 22 is fields[19].
	if len(fields) < 20 {
		return 0, fmt.Errorf("proc stat: %d fields after the command name, want at least 20", len(fields))
	}
	v, err := strconv.ParseUint(string(fields[19]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("proc stat: starttime %q: %w", fields[19], err)
	}
	return v, nil
}

// PidMax reads /proc/sys/kernel/pid_max.
func (fs FS) PidMax() (uint32, error) {
	p := fs.Root + "/sys/kernel/pid_max"
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", p, err)
	}
	v, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", p, err)
	}
	return uint32(v), nil
}

// Alive reports whether pid exists (kill(pid, 0) succeeds or fails with
// EPERM).
func Alive(pid uint32) bool {
	err := syscall.Kill(int(pid), 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Zombie reports whether pid has exited but not been reaped (state Z in
// /proc/<pid>/stat): it still answers kill(pid, 0) but will never beat
// again. An unreadable stat reports false.
func (fs FS) Zombie(pid uint32) bool {
	b, err := os.ReadFile(fs.Root + "/" + strconv.FormatUint(uint64(pid), 10) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] == 'Z'
}
