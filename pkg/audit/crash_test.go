package audit

import (
	"io"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCrashSafety SIGKILLs a writing helper process at random points, again
// and again. Every restart must resume (or repair a torn tail, or finish an
// interrupted rotation) and the log with its generations must verify: losses are allowed (records still in
// the queue die with the process, full queues drop), tamper is not.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns helper processes")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	path := logPath(t)
	for run := 0; run < 6; run++ {
		cmd, line, _ := startHelper(t, "writeloop", path)
		reason := strings.TrimPrefix(line, "ready ")
		// rotation: the previous helper died between moving PATH to PATH.1
		// and writing the new generation's boot.
		want := []string{string(BootResume), string(BootCorruptTail), string(BootRotation)}
		if run == 0 {
			want = []string{string(BootFresh)}
		}
		if !contains(want, reason) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("run %d: helper said %q, want one of %v", run, line, want)
		}
		time.Sleep(time.Duration(5+rng.IntN(60)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
	}
	// The last kill may have left a torn tail: open once more, as the
	// daemon's restart would, then verify.
	w := openWriter(t, Options{Path: path, MaxBytes: 64 << 10})
	if r := w.Boot().Reason; r != BootResume && r != BootCorruptTail && r != BootRotation {
		t.Fatalf("final open: %s", r)
	}
	closeWriter(t, w)
	rep := verify(t, path, VerifyOptions{})
	requireIntact(t, rep)
	if rep.Records < 7 {
		t.Fatalf("only %d records:\n%s", rep.Records, dumpReport(rep))
	}
	t.Logf("%d records in %d files, %d lost", rep.Records, len(rep.Files), rep.LostRecords)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestWriteFailureFileSizeLimit runs a writer under a tiny RLIMIT_FSIZE in
// a helper process: writes fail with EFBIG (partly written lines are cut
// back), the writer keeps running, Close reports the loss, and the file
// still verifies.
func TestWriteFailureFileSizeLimit(t *testing.T) {
	path := logPath(t)
	cmd, line, rest := startHelper(t, "rlimit", path)
	io.Copy(io.Discard, rest)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v (%s)", err, line)
	}
	var written, writeErrs, dropped int
	var closeErr bool
	if _, err := sscanf(line, "written %d write_errors %d dropped %d close_error %t", &written, &writeErrs, &dropped, &closeErr); err != nil {
		t.Fatalf("helper said %q: %v", line, err)
	}
	if writeErrs == 0 || dropped == 0 || !closeErr || written < 50 {
		t.Fatalf("helper said %q", line)
	}
	raw := mustRead(t, path)
	if len(raw) > 16<<10 || raw[len(raw)-1] != '\n' {
		t.Fatalf("file is %d bytes, ends with %q", len(raw), raw[len(raw)-1])
	}
	rep := verify(t, path, VerifyOptions{Strict: true})
	requireIntact(t, rep)
	if rep.Records != uint64(written) {
		t.Fatalf("file holds %d records, helper wrote %d", rep.Records, written)
	}
}
