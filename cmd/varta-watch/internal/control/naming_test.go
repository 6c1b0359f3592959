package control

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestCommNamer(t *testing.T) {
	proc := t.TempDir()
	setComm := func(pid int, comm string) {
		d := filepath.Join(proc, strconv.Itoa(pid))
		os.MkdirAll(d, 0o755)
		if err := os.WriteFile(filepath.Join(d, "comm"), []byte(comm), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	setComm(1, "nginx\n")
	setComm(2, "-rf\n")
	setComm(3, "esc\x1b]0;x\n")
	setComm(4, "\n")
	setComm(5, "all\n")
	setComm(6, "pid:9\n")
	setComm(7, "kworker/0:1\n")
	setComm(8, " padded\n")
	n := &CommNamer{Proc: proc}
	tests := []struct {
		pid   uint32
		local bool
		want  string
	}{
		{1, true, "nginx"},
		{1, false, "pid:1"}, // a claimed (UDP) pid has no identity
		{2, true, "pid:2"},
		{3, true, "pid:3"},
		{4, true, "pid:4"},
		{5, true, "pid:5"},
		{6, true, "pid:6"},
		{7, true, "kworker/0:1"},
		{8, true, "pid:8"},
		{404, true, "pid:404"}, // gone
	}
	for _, tc := range tests {
		got := n.Identify(tc.pid, 1, tc.local)
		if got.Service != tc.want || got.Unit != "-" {
			t.Errorf("Identify(%d, local=%v) = %+v, want %q", tc.pid, tc.local, got, tc.want)
		}
	}
	// Cached per generation: a new comm shows only for a new generation.
	setComm(1, "renamed\n")
	if got := n.Identify(1, 1, true).Service; got != "nginx" {
		t.Fatalf("same generation re-read: %q", got)
	}
	if got := n.Identify(1, 2, true).Service; got != "renamed" {
		t.Fatalf("new generation: %q", got)
	}
	// The cache is bounded.
	small := &CommNamer{Proc: proc, Max: 2}
	for pid := uint32(1); pid <= 8; pid++ {
		small.Identify(pid, 1, true)
	}
	if len(small.cache) > 2 {
		t.Fatalf("cache holds %d entries, bound 2", len(small.cache))
	}
}
