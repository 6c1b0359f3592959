package audit

import (
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestRotateStandalone(t *testing.T) {
	path := logPath(t)
	w := openWriter(t, Options{Path: path})
	writeCycles(t, w, 0, 20)
	head := w.Stats().Head
	closeWriter(t, w)
	for round := 1; round <= 7; round++ {
		res, err := Rotate(path, RotateOptions{DaemonPid: 77, Now: newFakeClock(0).Now})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		b := res.Boot
		if b.Boot.Reason != BootRotation || !b.Boot.HasPrevChain || b.Boot.PrevChain != head || b.Boot.DaemonPid != 77 {
			t.Fatalf("round %d: rotation boot %+v does not continue head %s", round, b, head)
		}
		head = b.Chain
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("new PATH: %v %v", fi, err)
		}
	}
	gens, _ := ListGenerations(path)
	if len(gens) != Generations+1 {
		t.Fatalf("%d files after 7 rotations, want %d", len(gens), Generations+1)
	}
	rep := verify(t, path, VerifyOptions{Anchor: &head})
	requireIntact(t, rep)
	// The daemon resumes the rotated log.
	w = openWriter(t, Options{Path: path})
	if w.Boot().Reason != BootResume {
		t.Fatalf("after rotate: %s", w.Boot().Reason)
	}
	closeWriter(t, w)
	requireIntact(t, verify(t, path, VerifyOptions{}))
}

func TestRotateRefuses(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		want    error
	}{
		{"missing file", func(t *testing.T, path string) {}, os.ErrNotExist},
		{"torn tail", func(t *testing.T, path string) {
			writeRecordsRaw(t, path, []uint64{1, 2})
			appendBytes(t, path, []byte("3\t1"))
		}, ErrTailNotClean},
		{"unchained log", func(t *testing.T, path string) {
			os.WriteFile(path, []byte(HeaderV2+"\n1\t1700000000000\t0\tboot\t1\t-\tfresh\t-\n"), 0o600)
		}, ErrTailNotClean},
		{"header only", func(t *testing.T, path string) {
			os.WriteFile(path, []byte(HeaderV2+"\n"), 0o600)
		}, ErrTailNotClean},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := logPath(t)
			tc.prepare(t, path)
			before, _ := os.ReadFile(path)
			_, err := Rotate(path, RotateOptions{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Rotate = %v, want %v", err, tc.want)
			}
			after, _ := os.ReadFile(path)
			if string(before) != string(after) {
				t.Fatal("a refused rotation changed the file")
			}
			if _, err := os.Stat(GenerationPath(path, 1)); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("a refused rotation created PATH.1")
			}
		})
	}
}

// exdevRename fails every rename with EXDEV, as across file systems.
func exdevRename(calls *atomic.Int32) func(a, b string) error {
	return func(a, b string) error {
		calls.Add(1)
		return &os.LinkError{Op: "rename", Old: a, New: b, Err: syscall.EXDEV}
	}
}

func TestRotationAcrossFileSystems(t *testing.T) {
	t.Run("writer", func(t *testing.T) {
		var calls atomic.Int32
		path := logPath(t)
		w := openWriter(t, withRename(Options{Path: path, MaxBytes: 4096}, exdevRename(&calls)))
		for i := 0; w.Stats().Rotations < 3; i += 10 {
			writeCycles(t, w, i, 10)
		}
		head := w.Stats().Head
		closeWriter(t, w)
		if calls.Load() == 0 {
			t.Fatal("rename hook not used")
		}
		rep := verify(t, path, VerifyOptions{Anchor: &head})
		requireIntact(t, rep)
		if len(rep.Files) != 4 {
			t.Fatalf("files:\n%s", dumpReport(rep))
		}
	})
	t.Run("Rotate", func(t *testing.T) {
		var calls atomic.Int32
		path := logPath(t)
		w := openWriter(t, Options{Path: path})
		writeCycles(t, w, 0, 5)
		closeWriter(t, w)
		ops := fileOps{rename: exdevRename(&calls)}
		for i := 0; i < 3; i++ {
			if _, err := Rotate(path, RotateOptions{ops: &ops}); err != nil {
				t.Fatal(err)
			}
		}
		if calls.Load() == 0 {
			t.Fatal("rename hook not used")
		}
		requireIntact(t, verify(t, path, VerifyOptions{}))
	})
}

func TestRotationFailureIsRetried(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	path := logPath(t)
	o := withRename(Options{Path: path, MaxBytes: 4096}, func(a, b string) error {
		if failing.Load() && !strings.HasSuffix(b, ".2") {
			return &os.LinkError{Op: "rename", Old: a, New: b, Err: syscall.EACCES}
		}
		return os.Rename(a, b)
	})
	clock := newFakeClock(10 * time.Millisecond)
	o.Now = clock.Now
	w := openWriter(t, o)
	writeCycles(t, w, 0, 60)
	if st := w.Stats(); st.Rotations != 0 || st.RotationErrors == 0 {
		t.Fatalf("stats %+v, want failed rotations", st)
	}
	failing.Store(false)
	for i := 60; w.Stats().Rotations == 0; i++ {
		cycle(t, w, i)
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if i > 2000 {
			t.Fatal("rotation never retried")
		}
	}
	closeWriter(t, w)
	requireIntact(t, verify(t, path, VerifyOptions{}))
}
