package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
)

// TestSocketGroupLetsOtherUsersIn: with --socket-group the socket file is
// 0660 and belongs to the group, so an agent of another user in that group
// reaches it (and is tracked with --allow-gid) while a user outside the
// group cannot even connect; nothing is world-writable. The events file
// and the audit log are 0640 with --files-group-readable.
func TestSocketGroupLetsOtherUsersIn(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run agents under other uids")
	}
	const gid = 4242
	dir := newDir(t)
	audit := filepath.Join(dir, "audit.log")
	d := startIn(t, dir, nil, "--threshold-ms", "60000", "--socket-group", strconv.Itoa(gid),
		"--allow-gid", strconv.Itoa(gid), "--files-group-readable", "--recovery-audit-file", audit)
	// The socket is bound owner-only and handed to the group just after
	// (so it is never open to the wrong group); wait for its final state.
	var sgid uint32
	var mode os.FileMode
	if !testsupport.Poll(10*time.Second, func() bool {
		fi, err := os.Lstat(d.Socket)
		if err != nil {
			t.Fatal(err)
		}
		sgid, mode = fi.Sys().(*syscall.Stat_t).Gid, fi.Mode().Perm()
		return sgid == gid && mode == 0o660
	}) {
		t.Fatalf("socket gid %d mode %04o, want %d 0660", sgid, mode, gid)
	}
	member := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 4343, Gid: gid}}
	_, pid := d.agent(context.Background(), "self", "1", 0, member)
	d.WaitEvents(10*time.Second, "beat of the group member", func(e []event) bool { return len(testsupport.Filter(e, "beat", strconv.Itoa(pid))) == 1 })

	outsider := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd, _ := d.agent(context.Background(), "self", "1", 0, outsider)
	if err := cmd.Wait(); err == nil {
		t.Fatal("a user outside the socket group could send to the socket")
	}
	for _, f := range []string{d.EventsFile, audit} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o640 {
			t.Fatalf("%s mode %04o, want 0640", f, fi.Mode().Perm())
		}
	}
}
