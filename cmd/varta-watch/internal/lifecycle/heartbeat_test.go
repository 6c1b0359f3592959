package lifecycle

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
)

func TestHeartbeatFileWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "heartbeat")
	h, err := NewHeartbeatFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		tick, ns uint64
		want     string
	}{
		{0, 0, "0 0\n"},
		{1, 1500000, "1 1500000\n"},
		{18446744073709551615, 18446744073709551615, "18446744073709551615 18446744073709551615\n"},
		{2, 7, "2 7\n"},
	}
	var prevIno uint64
	for _, tt := range tests {
		t.Run(tt.want[:len(tt.want)-1], func(t *testing.T) {
			if err := h.Write(tt.tick, tt.ns); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("content %q, want %q", got, tt.want)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Fatalf("mode %04o, want 0600", fi.Mode().Perm())
			}
			ino := fi.Sys().(*syscall.Stat_t).Ino
			if ino == prevIno {
				t.Fatal("same inode as before: the file was rewritten in place, not replaced")
			}
			prevIno = ino
			assertOnly(t, dir, "heartbeat")
		})
	}
}

// assertOnly fails unless dir holds exactly the named entries.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if fmt.Sprint(got) != fmt.Sprint(names) {
		t.Fatalf("directory holds %v, want %v", got, names)
	}
}

// TestHeartbeatFileReadersSeeWholeLines: a concurrent reader only ever sees
// a complete previous or new line, never an empty or partial file.
func TestHeartbeatFileReadersSeeWholeLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "heartbeat")
	h, err := NewHeartbeatFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Write(0, 0); err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`^[0-9]+ [0-9]+\n$`)
	done := make(chan struct{})
	var wg sync.WaitGroup
	var bad []string
	reads := 0
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			b, err := os.ReadFile(path)
			reads++
			if err != nil || !line.Match(b) {
				bad = append(bad, fmt.Sprintf("%q (%v)", b, err))
			}
		}
	})
	for i := uint64(1); i <= 1000; i++ {
		if err := h.Write(i, i*1000); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("%d of %d reads saw a torn heartbeat, first %s", len(bad), reads, bad[0])
	}
	t.Logf("%d concurrent reads, all whole", reads)
}

func TestHeartbeatFileTempLeftovers(t *testing.T) {
	tests := []struct {
		name  string
		plant func(t *testing.T, dir, tmp string)
	}{
		{"stale temp file", func(t *testing.T, dir, tmp string) {
			if err := os.WriteFile(tmp, []byte("999 999\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"symlink at temp name", func(t *testing.T, dir, tmp string) {
			if err := os.Symlink(filepath.Join(dir, "victim"), tmp); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			victim := filepath.Join(dir, "victim")
			if err := os.WriteFile(victim, []byte("keep\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "hb")
			tt.plant(t, dir, filepath.Join(dir, ".hb.tmp"))
			h, err := NewHeartbeatFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := h.Write(3, 4); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(path); string(b) != "3 4\n" {
				t.Fatalf("heartbeat %q", b)
			}
			if b, _ := os.ReadFile(victim); string(b) != "keep\n" {
				t.Fatalf("symlink target written: %q", b)
			}
			if fi, _ := os.Lstat(path); fi.Mode().Perm() != 0o600 || !fi.Mode().IsRegular() {
				t.Fatalf("heartbeat mode %v, want a regular 0600 file", fi.Mode())
			}
			assertOnly(t, dir, "hb", "victim")
		})
	}
}

func TestHeartbeatFileErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		wantErr    error
	}{
		{"empty", "", nil},
		{"missing directory", filepath.Join(dir, "nope", "hb"), os.ErrNotExist},
		{"parent is a file", filepath.Join(file, "hb"), nil},
		{"path is a directory", dir, nil},
		{"trailing slash", dir + "/", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewHeartbeatFile(tt.path)
			if err == nil {
				t.Fatal("NewHeartbeatFile succeeded")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
		})
	}
	t.Run("directory removed later", func(t *testing.T) {
		sub := filepath.Join(t.TempDir(), "sub")
		if err := os.Mkdir(sub, 0o700); err != nil {
			t.Fatal(err)
		}
		h, err := NewHeartbeatFile(filepath.Join(sub, "hb"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(sub); err != nil {
			t.Fatal(err)
		}
		if err := h.Write(1, 1); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("Write into a removed directory: %v, want ENOENT", err)
		}
	})
}
