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

// TestAllowGIDIsThePrimaryGroup: --allow-gid compares the gid the kernel
// reports with each datagram, the sender's effective (primary) group. An
// agent whose user is only a supplementary member of the socket's group can
// open the socket and send, but its beats are refused and counted
// (docs/guide.md, "Several users on one host"); one with that group as its
// primary group is tracked.
func TestAllowGIDIsThePrimaryGroup(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run agents under other uids")
	}
	const gid = 4245
	d := startWithMetrics(t, "--threshold-ms", "60000", "--socket-group", strconv.Itoa(gid), "--allow-gid", strconv.Itoa(gid))
	testsupport.Eventually(t, 10*time.Second, "socket handed to the group", func() bool {
		fi, err := os.Lstat(d.Socket)
		return err == nil && fi.Sys().(*syscall.Stat_t).Gid == gid
	})
	supplementary := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 4346, Gid: 65534, Groups: []uint32{gid}}}
	cmd, spid := d.agent(context.Background(), "self", "1", 0, supplementary)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("a supplementary member of the socket group could not send: %v", err)
	}
	d.waitMetric("varta_frame_uid_refused_total", 1)

	primary := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 4347, Gid: gid}}
	_, ppid := d.agent(context.Background(), "self", "1", 0, primary)
	evs := d.WaitEvents(10*time.Second, "beat of the primary member", func(e []event) bool {
		return len(testsupport.Filter(e, "beat", strconv.Itoa(ppid))) == 1
	})
	if n := len(testsupport.Filter(evs, "beat", strconv.Itoa(spid))); n != 0 {
		t.Fatalf("%d beats of the supplementary member accepted", n)
	}
}
