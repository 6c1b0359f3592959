package identity

import (
	"strings"
	"testing"
)

// FuzzCgroup: /proc/<pid>/cgroup paths are chosen by whoever can create
// cgroups (container runtimes, delegated users). The parser must never
// panic, and what it returns must obey the rules it promises.
func FuzzCgroup(f *testing.F) {
	f.Add([]byte("0::/system.slice/nginx.service\n"))
	f.Add([]byte("12:pids:/\n0::/system.slice/docker-" + hex64 + ".scope\n"))
	f.Add([]byte("0::/kubepods/cri-containerd-" + hex64 + ".scope/x@y.service"))
	f.Add([]byte("0::/a/-rf.service\n"))
	f.Add([]byte("0::\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, in []byte) {
		path, ok := CgroupV2Path(in)
		if !ok {
			return
		}
		if !strings.HasPrefix(path, "/") || strings.Contains(path, "\n") {
			t.Fatalf("path %q", path)
		}
		unit, container := ParseCgroupPath(path)
		if unit != Unknown {
			if !ValidUnitName(unit) || !(strings.HasSuffix(unit, ".service") || strings.HasSuffix(unit, ".scope")) {
				t.Fatalf("unit %q is not a service or scope unit name", unit)
			}
			if !strings.Contains(path, "/"+unit) {
				t.Fatalf("unit %q is not a component of %q", unit, path)
			}
		}
		if container != Unknown && !SafeContainer(container) {
			t.Fatalf("container %q", container)
		}
		if SafeUnit(unit) && (strings.HasPrefix(unit, "-") || strings.ContainsAny(unit, "/ \t\n")) {
			t.Fatalf("unsafe unit %q passed SafeUnit", unit)
		}
	})
}
