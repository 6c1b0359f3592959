package identity

import (
	"strings"
	"testing"
)

func TestCgroupV2Path(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		ok             bool
	}{
		{"v2 only", "0::/system.slice/nginx.service\n", "/system.slice/nginx.service", true},
		{"hybrid", "12:pids:/\n1:name=systemd:/x.scope\n0::/user.slice/a.scope\n", "/user.slice/a.scope", true},
		{"no trailing newline", "0::/a/b", "/a/b", true},
		{"root", "0::/\n", "/", true},
		{"v1 only", "4:memory:/x\n1:cpu:/\n", "", false},
		{"relative path", "0::x.scope\n", "", false},
		{"empty path", "0::\n", "", false},
		{"empty", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := CgroupV2Path([]byte(tc.in))
			if got != tc.want || ok != tc.ok {
				t.Fatalf("CgroupV2Path(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseCgroupPath(t *testing.T) {
	for _, tc := range []struct {
		path, unit, container string
	}{
		{"/system.slice/nginx.service", "nginx.service", Unknown},
		{"/user.slice/user-1000.slice/session-3.scope", "session-3.scope", Unknown},
		{"/system.slice/getty@tty1.service", "getty@tty1.service", Unknown},
		{"/system.slice/docker-" + hex64 + ".scope", "docker-" + hex64 + ".scope", "0123456789ab"},
		{"/kubepods.slice/kubepods-pod1.slice/cri-containerd-" + hex64 + ".scope", "cri-containerd-" + hex64 + ".scope", "0123456789ab"},
		{"/machine.slice/libpod-" + hex64 + ".scope/container", "libpod-" + hex64 + ".scope", "0123456789ab"},
		{"/kubepods/crio-" + hex64 + ".scope", "crio-" + hex64 + ".scope", "0123456789ab"},
		// The innermost unit wins; the container is found further up.
		{"/system.slice/docker-" + hex64 + ".scope/inner.service", "inner.service", "0123456789ab"},
		{"/system.slice/crio-conmon-" + hex64 + ".scope", "crio-conmon-" + hex64 + ".scope", Unknown},
		{"/system.slice/docker-ABCDEF0123456789.scope", "docker-ABCDEF0123456789.scope", Unknown}, // upper case: not an id
		{"/system.slice/docker-0123.scope", "docker-0123.scope", Unknown},                         // too short
		{"/", Unknown, Unknown},
		{"/system.slice", Unknown, Unknown},
		{"/a/bad name.service", Unknown, Unknown},
		{"/a/.service", Unknown, Unknown},
		{"/a/-rf.service/b", "-rf.service", Unknown}, // valid grammar; SafeUnit refuses it
		{"/varta-test-7.scope", "varta-test-7.scope", Unknown},
	} {
		unit, container := ParseCgroupPath(tc.path)
		if unit != tc.unit || container != tc.container {
			t.Errorf("ParseCgroupPath(%q) = %q, %q; want %q, %q", tc.path, unit, container, tc.unit, tc.container)
		}
	}
}

func TestValidUnitName(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"nginx.service", true},
		{"a.scope", true},
		{"foo@bar.service", true},
		{"foo@.service", true},
		{"foo@a@b.service", true},
		{"dev-sda1.device", true},
		{`sys-devices-foo\x2dbar.device`, true},
		{"-.slice", true},
		{"a:b_c.timer", true},
		{".service", false},
		{"nginx", false},
		{"nginx.", false},
		{"nginx.bogus", false},
		{"@x.service", false},
		{"a b.service", false},
		{"a/b.service", false},
		{"ä.service", false},
		{"a\x00.service", false},
		{"", false},
		{strings.Repeat("a", UnitNameMax-len(".service")) + ".service", true},
		{strings.Repeat("a", UnitNameMax-len(".service")+1) + ".service", false},
	} {
		if got := ValidUnitName(tc.in); got != tc.ok {
			t.Errorf("ValidUnitName(%q) = %v, want %v", tc.in, got, tc.ok)
		}
	}
}

func TestSafeValues(t *testing.T) {
	for _, tc := range []struct {
		in                   string
		name, unit, contaner bool
	}{
		{"nginx", true, false, false},
		{"nginx.service", true, true, false},
		{"0123456789ab", true, false, true},
		{"-rf", false, false, false},
		{"-.slice", false, false, false},
		{"-", false, false, false},
		{"", false, false, false},
		{"a/b", false, false, false},
		{"../etc", false, false, false},
		{"a b", false, false, false},
		{"a\nb", false, false, false},
		{"a\x7f", false, false, false},
		{"0123456789AB", true, false, false},
		{"0123456789abc", true, false, false},
	} {
		if got := SafeName(tc.in); got != tc.name {
			t.Errorf("SafeName(%q) = %v", tc.in, got)
		}
		if got := SafeUnit(tc.in); got != tc.unit {
			t.Errorf("SafeUnit(%q) = %v", tc.in, got)
		}
		if got := SafeContainer(tc.in); got != tc.contaner {
			t.Errorf("SafeContainer(%q) = %v", tc.in, got)
		}
	}
}

func TestDefaultService(t *testing.T) {
	for _, tc := range []struct {
		unit, comm, want string
	}{
		{"nginx.service", "nginx", "nginx.service"},
		{Unknown, "nginx", "nginx"},
		{Unknown, Unknown, Unknown},
	} {
		i := &Info{Unit: tc.unit, Comm: tc.comm}
		if got := i.DefaultService(); got != tc.want {
			t.Errorf("unit %q comm %q: %q, want %q", tc.unit, tc.comm, got, tc.want)
		}
	}
	if None.DefaultService() != Unknown || None.UIDString() != Unknown {
		t.Fatal("None has a name")
	}
}
