package identity

import (
	"bytes"
	"strings"
)

// CgroupV2Path returns the path of the cgroup v2 line ("0::/path") of a
// /proc/<pid>/cgroup file, and false when there is none (a cgroup v1-only
// host) or the file is malformed.
func CgroupV2Path(b []byte) (string, bool) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if rest, ok := bytes.CutPrefix(line, []byte("0::")); ok {
			if len(rest) == 0 || rest[0] != '/' {
				return "", false
			}
			return string(rest), true
		}
	}
	return "", false
}

// containerPrefixes are the scope names container runtimes give a
// container's cgroup: <prefix><id>.scope.
var containerPrefixes = []string{"docker-", "cri-containerd-", "crio-", "libpod-"}

// ContainerIDLen is how many hex digits of a container id are kept (the
// short form docker and podman print).
const ContainerIDLen = 12

// ParseCgroupPath returns the last path component that is a systemd
// service or scope unit name (Unknown when none) and the short id of the
// last component naming a container scope (Unknown when none).
func ParseCgroupPath(path string) (unit, container string) {
	unit, container = Unknown, Unknown
	for path != "" {
		var comp string
		if i := strings.LastIndexByte(path, '/'); i >= 0 {
			comp, path = path[i+1:], path[:i]
		} else {
			comp, path = path, ""
		}
		if unit == Unknown && (strings.HasSuffix(comp, ".service") || strings.HasSuffix(comp, ".scope")) && ValidUnitName(comp) {
			unit = comp
		}
		if container == Unknown {
			if id, ok := ContainerID(comp); ok {
				container = id
			}
		}
		if unit != Unknown && container != Unknown {
			break
		}
	}
	return unit, container
}

// ContainerID recognises one cgroup path component of a container scope
// (docker-<id>.scope, cri-containerd-<id>.scope, crio-<id>.scope,
// libpod-<id>.scope, where <id> is at least 12 lower-case hex digits) and
// returns the first 12 digits.
func ContainerID(comp string) (string, bool) {
	rest, ok := strings.CutSuffix(comp, ".scope")
	if !ok {
		return "", false
	}
	for _, p := range containerPrefixes {
		id, ok := strings.CutPrefix(rest, p)
		if !ok {
			continue
		}
		if len(id) < ContainerIDLen || !isHex(id) {
			return "", false
		}
		return id[:ContainerIDLen], true
	}
	return "", false
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// UnitNameMax is systemd's limit on a unit name's length (UNIT_NAME_MAX − 1).
const UnitNameMax = 255

// unitTypes are systemd's unit type suffixes.
var unitTypes = []string{
	"service", "socket", "target", "device", "mount", "automount",
	"swap", "timer", "path", "slice", "scope",
}

// ValidUnitName reports whether s follows the systemd unit-name grammar
// (systemd.unit(5), unit_name_is_valid): at most 255 bytes, a known type
// suffix, a non-empty prefix of [A-Za-z0-9:_.\-], optionally followed by
// "@" and an instance that may also hold '@' (a template "name@.type" is
// valid too).
func ValidUnitName(s string) bool {
	if s == "" || len(s) > UnitNameMax {
		return false
	}
	dot := strings.LastIndexByte(s, '.')
	if dot <= 0 {
		return false
	}
	known := false
	for _, t := range unitTypes {
		if s[dot+1:] == t {
			known = true
			break
		}
	}
	if !known {
		return false
	}
	name := s[:dot]
	prefix, instance, templ := strings.Cut(name, "@")
	if prefix == "" || !unitChars(prefix, false) {
		return false
	}
	if templ && instance != "" && !unitChars(instance, true) {
		return false
	}
	return true
}

func unitChars(s string, at bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == ':', c == '-', c == '_', c == '.', c == '\\':
		case c == '@' && at:
		default:
			return false
		}
	}
	return true
}

// SafeName reports whether v may be passed as a name argument to a
// recovery program: not Unknown or empty, not starting with '-' (an option
// to the program), no '/', no control bytes or space.
func SafeName(v string) bool {
	if v == "" || v == Unknown || v[0] == '-' {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '/' || c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// SafeUnit reports whether v may be passed as a {unit} argument: a
// SafeName that is also a valid unit name.
func SafeUnit(v string) bool { return SafeName(v) && ValidUnitName(v) }

// SafeContainer reports whether v is a short container id.
func SafeContainer(v string) bool { return len(v) == ContainerIDLen && isHex(v) }
