package events

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
)

// TestWriteErrorLeavesNoTornLine makes a real write fail half way through a
// line (RLIMIT_FSIZE, in a child process) and checks that the file holds
// only whole lines, the lost lines are counted, the error is counted and
// logged once, and writing resumes cleanly once the disk accepts data again.
func TestWriteErrorLeavesNoTornLine(t *testing.T) {
	path := os.Getenv("VARTA_EXPORT_TEST_PATH")
	if !inChild("fsize") {
		path = filepath.Join(t.TempDir(), "events")
		out := runChild(t, "TestWriteErrorLeavesNoTornLine", "fsize", "VARTA_EXPORT_TEST_PATH="+path)
		t.Logf("child: %s", strings.TrimSpace(string(out)))
		// Whatever the child saw, the file on disk holds whole lines only.
		for _, l := range lines(readFile(t, path)) {
			if !strings.HasSuffix(l, "\n") || strings.Count(l, "\t") != 5 {
				t.Fatalf("torn or glued line in %s: %q", path, l)
			}
		}
		return
	}

	const limit = 1000
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	saved := lim
	lim.Cur = limit
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	c := &stats.Counters{}
	var mu sync.Mutex
	var logged []string
	logf := func(f string, a ...any) { mu.Lock(); logged = append(logged, fmt.Sprintf(f, a...)); mu.Unlock() }
	// SyncEvery 60 makes the writer write all 60 lines (about 1.8 kB) in one
	// write(2), which the limit cuts in the middle of a line.
	w := openT(t, Options{Path: path, SyncEvery: 60, FlushInterval: time.Hour, Logf: logf}, c)
	for i := range 60 {
		w.Emit(Event{Kind: KindBeat, Ns: uint64(1_000_000_000 + i), Pid: 4242, Nonce: uint64(i), Payload: 1})
	}
	testsupport.Eventually(t, 10*time.Second, "the first 60 lines to be processed", func() bool { return w.written.Load() == 60 })
	first := lines(readFile(t, path))
	if len(first) == 0 || len(first) >= 60 {
		t.Fatalf("%d lines on disk after the failing write, want some but not all", len(first))
	}
	if fi, _ := os.Stat(path); fi.Size() > limit {
		t.Fatalf("file is %d bytes, above the %d byte limit", fi.Size(), limit)
	}
	for _, l := range first {
		if !strings.HasSuffix(l, "\n") {
			t.Fatalf("torn line left in the file: %q", l)
		}
	}
	if got, want := c.ExportDropped.Load(), uint64(60-len(first)); got != want {
		t.Fatalf("dropped = %d, want %d (60 emitted, %d on disk)", got, want, len(first))
	}
	if c.ExportIOErrors.Load() == 0 {
		t.Fatal("write error not counted")
	}

	// The disk takes data again: new lines follow the whole ones directly.
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &saved); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		w.Emit(Event{Kind: KindStall, Ns: uint64(2_000_000_000 + i), Pid: 4242, Nonce: uint64(i)})
	}
	closeT(t, w)
	all := lines(readFile(t, path))
	if len(all) != len(first)+3 {
		t.Fatalf("%d lines after recovery, want %d", len(all), len(first)+3)
	}
	for i, l := range all[len(first):] {
		if want := fmt.Sprintf("%d\tstall\t4242\t%d\tstall\t-\n", 2_000_000_000+i, i); l != want {
			t.Fatalf("line after recovery = %q, want %q", l, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(logged) != 1 || !strings.Contains(logged[0], path) || !strings.Contains(logged[0], "file too large") {
		t.Fatalf("logged %q, want exactly one message naming the file and the error", logged)
	}
	fmt.Printf("on disk before recovery %d, dropped %d, io errors %d\n", len(first), c.ExportDropped.Load(), c.ExportIOErrors.Load())
}
