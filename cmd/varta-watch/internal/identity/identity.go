package identity

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
)

// Unknown is the value of a field that is not known: unreadable, absent
// (no unit in the cgroup path) or not applicable (UDP agents).
const Unknown = "-"

// Info is what the observer knows about one tracked generation of an agent.
// It is immutable once published: a changed value (a policy reload that
// renames the service) is a new *Info.
type Info struct {
	// UID is the sender's uid from the datagram credentials; HasUID is false
	// for UDP agents.
	UID    uint32
	HasUID bool
	// Comm is /proc/<pid>/comm: chosen by the process, informative only.
	Comm string
	// Exe is the target of /proc/<pid>/exe.
	Exe string
	// Unit is the last systemd unit (*.service, *.scope) on the cgroup v2
	// path.
	Unit string
	// Container is the first 12 hex digits of a container id found on the
	// cgroup v2 path.
	Container string
	// Service is the name the agent is known by (docs/services.md, "Identity"): the
	// matching policy rule's name, else Unit, else Comm, else "-". The
	// observer fills it; Resolve leaves it Unknown.
	Service string
	// Rule is the index of the matching policy rule, or -1.
	Rule int
}

// None is the identity of an agent nothing is known about (UDP agents).
var None = &Info{Comm: Unknown, Exe: Unknown, Unit: Unknown, Container: Unknown, Service: Unknown, Rule: -1}

// UIDString returns the uid in decimal, or "-".
func (i *Info) UIDString() string {
	if !i.HasUID {
		return Unknown
	}
	return strconv.FormatUint(uint64(i.UID), 10)
}

// DefaultService is the service name of an agent that matches no policy
// rule: its unit if known, else its comm, else "-".
func (i *Info) DefaultService() string {
	switch {
	case i.Unit != Unknown && i.Unit != "":
		return i.Unit
	case i.Comm != Unknown && i.Comm != "":
		return i.Comm
	}
	return Unknown
}

// WithService returns a copy of i naming service and rule.
func (i *Info) WithService(service string, rule int) *Info {
	c := *i
	c.Service, c.Rule = service, rule
	return &c
}

// Field names one /proc read, for Counters.
type Field uint8

// Fields read from /proc.
const (
	FieldComm Field = iota
	FieldExe
	FieldCgroup
	NumFields
)

var fieldNames = [NumFields]string{"comm", "exe", "cgroup"}

// String returns the field's name as used in the metric label.
func (f Field) String() string {
	if f < NumFields {
		return fieldNames[f]
	}
	return "unknown"
}

// Counters count identity reads. Safe for concurrent use.
type Counters struct {
	// Resolved counts Resolve calls.
	Resolved atomic.Uint64
	// Unreadable counts reads that failed (permission, the process
	// vanished, an unparsable file), per field.
	Unreadable [NumFields]atomic.Uint64
}

// Resolver reads identities from a proc filesystem.
type Resolver struct {
	// Root is the proc mount ("/proc" when empty).
	Root string
	// C receives the counts; nil counts nothing.
	C *Counters
}

// maxRead bounds every /proc read (comm is at most 16 bytes, a cgroup file
// a few hundred).
const maxRead = 8 << 10

// Resolve reads pid's identity; uid comes from the datagram credentials.
// It never fails: a field it cannot read is Unknown and counted. Service is
// Unknown and Rule -1 (the caller fills them from the policy).
func (r Resolver) Resolve(pid, uid uint32) *Info {
	root := r.Root
	if root == "" {
		root = "/proc"
	}
	dir := root + "/" + strconv.FormatUint(uint64(pid), 10) + "/"
	info := &Info{UID: uid, HasUID: true, Comm: Unknown, Exe: Unknown, Unit: Unknown, Container: Unknown, Service: Unknown, Rule: -1}
	if r.C != nil {
		r.C.Resolved.Add(1)
	}
	if b, err := readSmall(dir + "comm"); err == nil && len(b) > 0 {
		info.Comm = string(bytes.TrimSuffix(b, []byte{'\n'}))
	} else {
		r.unreadable(FieldComm)
	}
	if exe, err := os.Readlink(dir + "exe"); err == nil && exe != "" {
		info.Exe = exe
	} else {
		r.unreadable(FieldExe)
	}
	if b, err := readSmall(dir + "cgroup"); err == nil {
		if path, ok := CgroupV2Path(b); ok {
			info.Unit, info.Container = ParseCgroupPath(path)
		}
	} else {
		r.unreadable(FieldCgroup)
	}
	return info
}

func (r Resolver) unreadable(f Field) {
	if r.C != nil {
		r.C.Unreadable[f].Add(1)
	}
}

var errTooLarge = errors.New("file larger than expected")

// readSmall reads a small /proc file with one open and at most two reads.
func readSmall(path string) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	buf := make([]byte, 0, 512)
	for len(buf) < maxRead {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := syscall.Read(fd, buf[len(buf):cap(buf)])
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			return nil, err
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
	return nil, errTooLarge
}
