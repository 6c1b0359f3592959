package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/varta-go/varta/cmd/varta-watch/internal/identity"
	"github.com/varta-go/varta/pkg/audit"
)

// ErrIdentityUnsafe is wrapped by Expand's errors; the recovery is
// refused with audit.ReasonIdentityUnsafe.
var ErrIdentityUnsafe = errors.New(audit.ReasonIdentityUnsafe.String())

// Expand substitutes the placeholders of argv for agent pid with identity
// info. A placeholder whose value is "-" or unsafe (starts with '-', holds
// '/', a space or a control byte, a {unit} outside the systemd unit-name
// grammar, a {container} that is not a short id) refuses the whole
// recovery with an error wrapping ErrIdentityUnsafe that names the
// placeholder, so an argument is never empty or attacker-shaped.
func Expand(argv []string, pid uint32, info *identity.Info) ([]string, error) {
	out := make([]string, len(argv))
	for i, a := range argv {
		if strings.IndexByte(a, '{') < 0 {
			out[i] = a
			continue
		}
		var b strings.Builder
		for k := 0; k < len(a); k++ {
			if a[k] == '{' {
				if end := strings.IndexByte(a[k:], '}'); end > 0 {
					name := a[k+1 : k+end]
					if v, known, err := value(name, pid, info); known {
						if err != nil {
							return nil, err
						}
						b.WriteString(v)
						k += end
						continue
					}
				}
			}
			b.WriteByte(a[k])
		}
		out[i] = b.String()
	}
	return out, nil
}

// value returns the safe value of placeholder name; known is false for a
// name that is not a placeholder (literal braces).
func value(name string, pid uint32, info *identity.Info) (v string, known bool, err error) {
	unsafe := func(v string) (string, bool, error) {
		return "", true, fmt.Errorf("%w: {%s} is %q", ErrIdentityUnsafe, name, v)
	}
	switch name {
	case "pid":
		if pid == 0 {
			return unsafe("0")
		}
		return strconv.FormatUint(uint64(pid), 10), true, nil
	case "uid":
		if !info.HasUID {
			return unsafe(identity.Unknown)
		}
		return info.UIDString(), true, nil
	case "unit":
		if !identity.SafeUnit(info.Unit) {
			return unsafe(info.Unit)
		}
		return info.Unit, true, nil
	case "service":
		if !identity.SafeName(info.Service) {
			return unsafe(info.Service)
		}
		return info.Service, true, nil
	case "comm":
		if !identity.SafeName(info.Comm) {
			return unsafe(info.Comm)
		}
		return info.Comm, true, nil
	case "container":
		if !identity.SafeContainer(info.Container) {
			return unsafe(info.Container)
		}
		return info.Container, true, nil
	}
	return "", false, nil
}
