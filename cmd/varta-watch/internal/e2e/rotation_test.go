package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
	"github.com/varta-go/varta/pkg/audit"
)

// TestAuditLogRotatesAndVerifies: a daemon that decides many recoveries
// with --recovery-audit-max-bytes 4096 rotates its audit log into
// generations, and varta-audit verifies the chain across all of them.
func TestAuditLogRotatesAndVerifies(t *testing.T) {
	t.Parallel()
	r := newRecoveryEnv(t)
	d := startIn(t, r.dir, nil, "--threshold-ms", "50", "--recovery-debounce-ms", "0",
		"--recovery-exec", "/bin/true {pid}", "--recovery-audit-file", r.audit, "--recovery-audit-max-bytes", "4096")
	var sched []string
	for i := 1; i <= 40; i++ {
		sched = append(sched, itoa(i), "+120ms")
	}
	d.agent(context.Background(), "self", strings.Join(sched, ","), 30*time.Second, nil)
	testsupport.Eventually(t, 30*time.Second, "a second rotated generation", func() bool {
		_, err := os.Stat(r.audit + ".2")
		return err == nil
	})
	if code := d.Stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
	out, err := exec.Command(auditPath, "verify", "--format", "json", r.audit).CombinedOutput()
	if err != nil {
		t.Fatalf("varta-audit verify: %v\n%s", err, out)
	}
	var rep struct {
		Verdict string `json:"verdict"`
		Files   []struct {
			Path string `json:"path"`
		} `json:"files"`
		Records int `json:"records"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(rep.Files) < 3 || rep.Records < 20 {
		t.Fatalf("verified %d files, %d records: %s", len(rep.Files), rep.Records, out)
	}
	// Every rotated-into file starts with a rotation boot.
	for _, f := range rep.Files[1:] {
		recs := readAudit(t, f.Path)
		if len(recs) == 0 || recs[0].Kind != audit.KindBoot || recs[0].Boot.Reason != audit.BootRotation {
			t.Fatalf("%s does not start with a rotation boot", f.Path)
		}
	}
}

// TestEventsFileRotates: --export-file-max-bytes keeps generations of
// whole lines, none larger than the limit.
func TestEventsFileRotates(t *testing.T) {
	t.Parallel()
	d := start(t, "--threshold-ms", "60000", "--export-file-max-bytes", "4096", "--max-beat-rate", "0")
	s := d.dial()
	for i := uint64(1); i <= 800; i++ { // about 31 bytes a line: six files' worth
		s.beat(i)
	}
	// Wait for the last beat to be written: datagrams still queued in the
	// socket when the daemon stops are not read.
	testsupport.Eventually(t, 15*time.Second, "the last beat in the current file", func() bool {
		b, _ := os.ReadFile(d.EventsFile)
		return strings.Contains(string(b), "\t800\tok\t")
	})
	if _, err := os.Stat(d.EventsFile + ".5"); err != nil {
		t.Fatalf("five rotated generations expected: %v", err)
	}
	if code := d.Stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
	var all []string
	for _, p := range []string{d.EventsFile + ".5", d.EventsFile + ".4", d.EventsFile + ".3", d.EventsFile + ".2", d.EventsFile + ".1", d.EventsFile} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if len(b) > 4096 || (len(b) > 0 && b[len(b)-1] != '\n') {
			t.Fatalf("%s: %d bytes, last byte %q", p, len(b), b[len(b)-1])
		}
		all = append(all, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
	}
	// The newest generations hold the newest beats, in order, with no line
	// lost or torn between files.
	var prev int
	for _, l := range all {
		cols := strings.Split(l, "\t")
		if len(cols) != 6 {
			t.Fatalf("torn line %q", l)
		}
		n := atoi(cols[3])
		if prev != 0 && n != prev+1 {
			t.Fatalf("nonce %d after %d across generations", n, prev)
		}
		prev = n
	}
	if prev != 800 {
		t.Fatalf("last nonce %d", prev)
	}
	if _, err := os.Stat(d.EventsFile + ".6"); err == nil {
		t.Fatal("more than 5 generations kept")
	}
}

// TestVartaAuditRotateRefusesLiveDaemon: the daemon holds its audit log's
// lock for its whole life, so varta-audit rotate refuses the live file and
// succeeds once the daemon has stopped; the result still verifies.
func TestVartaAuditRotateRefusesLiveDaemon(t *testing.T) {
	t.Parallel()
	r := newRecoveryEnv(t)
	d := startIn(t, r.dir, nil, "--threshold-ms", "60000", "--recovery-audit-file", r.audit)
	waitAudit(t, r.audit, "boot record", func(rs []audit.Record) bool { return len(rs) == 1 })
	cmd := exec.Command(auditPath, "rotate", r.audit)
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(strings.ToLower(string(out)), "lock") {
		t.Fatalf("rotate on a live daemon's log: exit %d (%v): %s", cmd.ProcessState.ExitCode(), err, out)
	}
	if code := d.Stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if out, err := exec.Command(auditPath, "rotate", r.audit).CombinedOutput(); err != nil {
		t.Fatalf("rotate after the daemon stopped: %v: %s", err, out)
	}
	if _, err := os.Stat(r.audit + ".1"); err != nil {
		t.Fatal("no rotated generation")
	}
	verifyAudit(t, r.audit)
}
