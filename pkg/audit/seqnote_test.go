package audit

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// loseAtClose opens a writer on path whose writes fail with ENOSPC after
// the boot record, enqueues n refusals and closes it; it returns Close's
// error.
func loseAtClose(t *testing.T, path string, n int) error {
	t.Helper()
	var mu sync.Mutex
	full := false
	o := withWriteHook(Options{Path: path}, func(f *os.File, b []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		if full {
			return 0, syscall.ENOSPC
		}
		return f.Write(b)
	})
	w := openWriter(t, o)
	mu.Lock()
	full = true
	mu.Unlock()
	for range n {
		w.Refused(RefusedRecord{AgentPid: 1, Reason: ReasonDebounced.String()})
	}
	return w.Close()
}

// TestLossAtCloseIsAGapAtNextBoot: records that could not be written at
// Close make Close fail naming them, and the next boot starts after them,
// so verify reports the loss (never INTACT without a gap), with a '#' line
// naming the lost seqs; the boot after that continues normally.
func TestLossAtCloseIsAGapAtNextBoot(t *testing.T) {
	tests := []struct {
		name     string
		lost     int
		tamper   func(t *testing.T, path string) // between the two boots
		wantSeq  uint64                          // seq of the next boot
		wantLoss bool
	}{
		{"disk full at close", 3, nil, 5, true},
		{"one record", 1, nil, 3, true},
		{"note of another file ignored", 3, func(t *testing.T, path string) {
			os.Remove(path) // the log was replaced: a fresh file
		}, 1, false},
		{"malformed note ignored", 3, func(t *testing.T, path string) {
			os.WriteFile(SeqNotePath(path), []byte("next 99\n"), 0o600)
		}, 2, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := logPath(t)
			err := loseAtClose(t, path, tc.lost)
			want := "could not be written"
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "next boot leaves them as a gap") {
				t.Fatalf("Close = %v, want %q and the gap recorded", err, want)
			}
			if tc.tamper != nil {
				tc.tamper(t, path)
			}
			w := openWriter(t, Options{Path: path})
			b := w.Boot()
			closeWriter(t, w)
			if b.Seq != tc.wantSeq {
				t.Fatalf("next boot seq %d, want %d", b.Seq, tc.wantSeq)
			}
			rep := verify(t, path, VerifyOptions{})
			requireIntact(t, rep)
			text, _ := os.ReadFile(path)
			if !tc.wantLoss {
				if len(rep.Losses) != 0 || b.LostSeqs != 0 || bytes.Contains(text, []byte("lost")) {
					t.Fatalf("unexpected loss:\n%s", dumpReport(rep))
				}
				return
			}
			if b.LostSeqs != uint64(tc.lost) || len(rep.Losses) != 1 || rep.Losses[0].Missing != uint64(tc.lost) || rep.LostRecords != uint64(tc.lost) {
				t.Fatalf("LostSeqs %d, want %d; report:\n%s", b.LostSeqs, tc.lost, dumpReport(rep))
			}
			line := lossComment(seqNote{next: tc.wantSeq, pid: 4242}, 2)
			if !bytes.Contains(text, line) {
				t.Fatalf("file lacks %q:\n%s", line, text)
			}
			if strict := verify(t, path, VerifyOptions{Strict: true}); strict.Intact() {
				t.Fatal("--strict accepts a log with a loss")
			}
			// The gap is recorded once: the following boot resumes.
			w = openWriter(t, Options{Path: path})
			if b2 := w.Boot(); b2.Seq != tc.wantSeq+1 || b2.LostSeqs != 0 || b2.Reason != BootResume {
				t.Fatalf("third boot %+v, want resume at seq %d", b2, tc.wantSeq+1)
			}
			closeWriter(t, w)
		})
	}
}

// TestCleanCloseLeavesNoGap: a clean shutdown leaves a cleared note.
func TestCleanCloseLeavesNoGap(t *testing.T) {
	path := logPath(t)
	w := openWriter(t, Options{Path: path})
	writeCycles(t, w, 0, 6)
	closeWriter(t, w)
	note, err := os.ReadFile(SeqNotePath(path))
	if err != nil {
		t.Fatal(err)
	}
	if n, derr := decodeSeqNote(note); derr != nil || n.next != 0 {
		t.Fatalf("note after a clean close: %+v %v", n, derr)
	}
	if fi, err := os.Stat(SeqNotePath(path)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("note mode: %v %v", fi.Mode(), err)
	}
	w = openWriter(t, Options{Path: path})
	if b := w.Boot(); b.Seq != 8 || b.LostSeqs != 0 {
		t.Fatalf("boot %+v, want seq 8 without loss", b)
	}
	closeWriter(t, w)
	if rep := verify(t, path, VerifyOptions{Strict: true}); !rep.Intact() {
		t.Fatalf("strict verify:\n%s", dumpReport(rep))
	}
}

// TestSeqNoteRefusesSymlink: the note follows the audit file rules.
func TestSeqNoteRefusesSymlink(t *testing.T) {
	path := logPath(t)
	target := path + ".elsewhere"
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, SeqNotePath(path)); err != nil {
		t.Fatal(err)
	}
	w := openWriter(t, Options{Path: path}) // the note is advice: Open still works
	w.Refused(RefusedRecord{AgentPid: 1, Reason: ReasonDebounced.String()})
	closeWriter(t, w)
	if b, _ := os.ReadFile(target); len(b) != 0 {
		t.Fatalf("note written through a symlink: %q", b)
	}
}

func TestSeqNoteRoundTrip(t *testing.T) {
	n := seqNote{next: 1<<64 - 1, lost: 92, pid: 1<<32 - 1}
	n.after[0], n.after[31] = 0xab, 0xcd
	got, err := decodeSeqNote(n.encode())
	if err != nil || got != n {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if len(seqNote{}.encode()) != seqNoteSize {
		t.Fatal("encoding is not fixed-size")
	}
}

// FuzzDecodeSeqNote: the note parser never panics and whatever it accepts
// re-encodes to the same bytes.
func FuzzDecodeSeqNote(f *testing.F) {
	f.Add(seqNote{}.encode())
	f.Add(seqNote{next: 93, lost: 92, pid: 7}.encode())
	f.Add([]byte("varta-audit-seq v1\nnext 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := decodeSeqNote(b)
		if err != nil {
			return
		}
		if !bytes.Equal(n.encode(), b) {
			t.Fatalf("accepted %q, re-encodes to %q", b, n.encode())
		}
	})
}

// TestRotateKeepsTheGap: an offline rotation of a log whose daemon lost
// records at shutdown starts the new generation after the lost seqs.
func TestRotateKeepsTheGap(t *testing.T) {
	path := logPath(t)
	if err := loseAtClose(t, path, 4); err == nil {
		t.Fatal("no loss reported")
	}
	res, err := Rotate(path, RotateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Boot.Seq != 6 {
		t.Fatalf("rotation boot seq %d, want 6 (seqs 2..5 lost)", res.Boot.Seq)
	}
	rep := verify(t, path, VerifyOptions{})
	requireIntact(t, rep)
	if rep.LostRecords != 4 {
		t.Fatalf("lost %d, want 4:\n%s", rep.LostRecords, dumpReport(rep))
	}
	w := openWriter(t, Options{Path: path}) // the note was cleared
	if b := w.Boot(); b.Seq != 7 || b.LostSeqs != 0 {
		t.Fatalf("boot after the rotation %+v, want seq 7 without loss", b)
	}
	closeWriter(t, w)
}
