package listener

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// testGroup returns a group the socket file may be given: any gid when
// running as root, else one of our own groups.
func testGroup(t *testing.T) uint32 {
	t.Helper()
	if os.Geteuid() == 0 {
		return 4242
	}
	gs, err := os.Getgroups()
	if err != nil || len(gs) == 0 {
		return uint32(os.Getgid())
	}
	return uint32(gs[len(gs)-1])
}

func TestSocketGroup(t *testing.T) {
	gid := testGroup(t)
	for _, tc := range []struct {
		name      string
		group     *uint32
		mode      os.FileMode
		wantGroup uint32
	}{
		{"group and 0660", &gid, 0o660, gid},
		{"no group keeps ours", nil, 0o600, uint32(os.Getegid())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "varta.sock")
			u, err := ListenUnix(UnixOptions{Path: p, Mode: tc.mode, Group: tc.group})
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()
			fi, err := os.Lstat(p)
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if st.Gid != tc.wantGroup || fi.Mode().Perm() != tc.mode {
				t.Fatalf("socket gid %d mode %04o, want gid %d mode %04o", st.Gid, fi.Mode().Perm(), tc.wantGroup, tc.mode)
			}
			if st.Uid != uint32(os.Geteuid()) {
				t.Fatalf("socket owner %d changed", st.Uid)
			}
		})
	}
}

func TestSocketGroupRefusedLeavesNoFile(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root may give the socket any group")
	}
	bad := uint32(4242424)
	p := filepath.Join(t.TempDir(), "varta.sock")
	if _, err := ListenUnix(UnixOptions{Path: p, Mode: 0o660, Group: &bad}); err == nil {
		t.Fatal("chgrp to a foreign group succeeded")
	}
	if _, err := os.Lstat(p); !os.IsNotExist(err) {
		t.Fatalf("socket file left behind: %v", err)
	}
}
