package events

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestGroupReadableModes: with GroupReadable the events file and every
// rotated generation are 0640 (even under umask 077, as systemd's UMask=
// may set), an existing 0600 file gains group read, and group write or
// any other bit is still refused; without it the file stays owner-only.
func TestGroupReadableModes(t *testing.T) {
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	for _, tc := range []struct {
		name     string
		existing os.FileMode // 0 = no file
		group    bool
		want     os.FileMode
		wantErr  error
	}{
		{"created group-readable", 0, true, 0o640, nil},
		{"created owner-only", 0, false, 0o600, nil},
		{"0600 made group-readable", 0o600, true, 0o640, nil},
		{"0640 kept", 0o640, true, 0o640, nil},
		{"0640 refused without the flag", 0o640, false, 0, ErrGroupOtherAccess},
		{"group-writable refused", 0o660, true, 0, ErrGroupOtherAccess},
		{"other-readable refused", 0o644, true, 0, ErrGroupOtherAccess},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "events")
			if tc.existing != 0 {
				mustWrite(t, path, tc.existing)
			}
			w, err := Open(Options{Path: path, GroupReadable: tc.group}, nil)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					if w != nil {
						w.Close()
					}
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			closeT(t, w)
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != tc.want {
				t.Fatalf("mode %v (%v), want %04o", fi.Mode().Perm(), err, tc.want)
			}
		})
	}
}

func TestGroupReadableRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events")
	w := openT(t, Options{Path: path, MaxBytes: 4096, GroupReadable: true}, nil)
	for i := range 400 {
		w.Emit(Event{Kind: KindBeat, Ns: uint64(1_000_000 + i), Pid: 4242, Nonce: uint64(i)})
	}
	closeT(t, w)
	for _, name := range []string{path, path + ".1", path + ".2"} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o640 {
			t.Fatalf("%s has mode %04o, want 0640", name, fi.Mode().Perm())
		}
	}
}
