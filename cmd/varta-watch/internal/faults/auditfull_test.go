package faults

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
	"github.com/varta-go/varta/pkg/audit"
)

// mountTmpfs mounts a tmpfs of size bytes on a fresh directory (root only)
// and unmounts it at cleanup.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := testsupport.ShortDir(t)
	mnt := filepath.Join(dir, "small")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size="+strconv.Itoa(size)+",mode=0755"); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	return mnt
}

// fillDisk writes path until the file system is full and returns the
// bytes written.
func fillDisk(t *testing.T, path string) int {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 512)
	total := 0
	for {
		n, err := f.Write(buf)
		total += n
		if errors.Is(err, syscall.ENOSPC) {
			return total
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

var lostRE = regexp.MustCompile(`(\d+) record\(s\) could not be written \(seq (\d+)\.\.(\d+)\)`)

// TestAuditDiskFullAtShutdownIsVisible (issue row "SIGTERM while the disk
// is full"): the audit log lives on a small tmpfs; after it fills up,
// agents stall and recoveries run, so their records cannot be written.
// SIGTERM must exit 1 naming the lost records, and after space is freed the
// next boot must leave their seqs as a gap that varta-audit verify reports
// (exit 0 with a loss warning; 1 with --strict).
func TestAuditDiskFullAtShutdownIsVisible(t *testing.T) {
	// 40 stalls make about 80 records (10 KiB), more than the free part
	// of the log's last page, which a full tmpfs still accepts. The case
	// takes a few seconds, so -short runs it whole.
	const agents = 40
	mnt := mountTmpfs(t, 64<<10)
	logPath := filepath.Join(mnt, "audit.log")
	dir := testsupport.ShortDir(t)
	args := []string{"--threshold-ms", "300", "--recovery-exec", "/bin/true {pid}",
		"--recovery-audit-file", logPath}
	w := startWatch(t, dir, args...)

	var beats []*exec.Cmd
	t.Cleanup(func() {
		for _, b := range beats {
			b.Process.Signal(syscall.SIGKILL)
			b.Process.Signal(syscall.SIGCONT)
			b.Wait()
		}
	})
	for range agents {
		b := exec.Command(beatBin, "run", "--socket", w.Socket, "--interval", "50ms")
		if err := b.Start(); err != nil {
			t.Fatal(err)
		}
		beats = append(beats, b)
	}
	// perAgent reports whether every agent has a line of kind in the
	// events file.
	perAgent := func(kind string) bool {
		seen := map[string]bool{}
		for _, e := range w.ReadEvents() {
			if e.Kind == kind {
				seen[e.Pid] = true
			}
		}
		for _, b := range beats {
			if !seen[strconv.Itoa(b.Process.Pid)] {
				return false
			}
		}
		return true
	}
	testsupport.Eventually(t, 20*time.Second, "a beat of every agent", func() bool { return perAgent("beat") })
	filler := fillDisk(t, filepath.Join(mnt, "filler"))
	// Stall every agent: each stall is a recovery (spawn + complete
	// records) that the full disk cannot take.
	for _, b := range beats {
		b.Process.Signal(syscall.SIGSTOP)
	}
	testsupport.Eventually(t, 20*time.Second, "audit write failures", func() bool {
		return strings.Contains(w.Stderr.String(), "audit log write failed")
	})
	testsupport.Eventually(t, 20*time.Second, "a stall of every agent", func() bool { return perAgent("stall") })
	code := w.Stop(syscall.SIGTERM)
	stderr := w.Stderr.String()
	m := lostRE.FindStringSubmatch(stderr)
	if code != 1 || m == nil {
		t.Fatalf("SIGTERM with the disk full: exit %d, want 1 naming the lost records; stderr:\n%s", code, stderr)
	}
	lost, _ := strconv.ParseUint(m[1], 10, 64)
	first, _ := strconv.ParseUint(m[2], 10, 64)
	last, _ := strconv.ParseUint(m[3], 10, 64)
	if !strings.Contains(stderr, "the next boot leaves them as a gap") {
		t.Fatalf("stderr does not say the gap was recorded:\n%s", stderr)
	}

	// Free the space and boot again on the same log.
	if err := os.Remove(filepath.Join(mnt, "filler")); err != nil {
		t.Fatal(err)
	}
	for _, b := range beats {
		b.Process.Signal(syscall.SIGKILL)
		b.Process.Signal(syscall.SIGCONT)
	}
	w2 := startWatch(t, dir, args...)
	if code := w2.Stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("second boot: exit %d\n%s", code, w2.Stderr.String())
	}
	out, err := exec.Command(auditBin, "verify", "--format", "json", logPath).CombinedOutput()
	if err != nil {
		t.Fatalf("varta-audit verify: %v\n%s", err, out)
	}
	rep, err := audit.Verify(logPath, audit.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Losses) != 1 || rep.Losses[0].After != first-1 || rep.Losses[0].Next != last+1 || rep.LostRecords != lost {
		t.Fatalf("verify report: losses %+v (lost %d), want one gap of %d after seq %d", rep.Losses, rep.LostRecords, lost, first-1)
	}
	if !strings.Contains(string(out), `"missing": `+m[1]) && !strings.Contains(string(out), `"missing":`+m[1]) {
		t.Fatalf("varta-audit verify output lacks the gap of %d:\n%s", lost, out)
	}
	if err := exec.Command(auditBin, "verify", "--strict", logPath).Run(); err == nil {
		t.Fatal("varta-audit verify --strict accepts the log with a loss")
	}
	text, _ := os.ReadFile(logPath)
	if !strings.Contains(string(text), "# "+m[1]+" record(s) lost: seq "+m[2]+".."+m[3]) {
		t.Fatalf("log lacks the loss line:\n%s", text)
	}
	t.Logf("agents %d, filler %d bytes, records lost at SIGTERM %d (seq %d..%d), exit 1; next boot seq %d; verify: %d gap, %d lost",
		agents, filler, lost, first, last, last+1, len(rep.Losses), rep.LostRecords)
}
