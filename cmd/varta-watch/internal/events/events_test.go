package events

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
	"github.com/varta-go/varta/pkg/logthrottle"
	"github.com/varta-go/varta/pkg/vlp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// openT opens a Writer and closes it at the end of the test.
func openT(t *testing.T, opts Options, c *stats.Counters) *Writer {
	t.Helper()
	w, err := Open(opts, c)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func closeT(t *testing.T, w *Writer) {
	t.Helper()
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func beat(i int) Event {
	return Event{Kind: KindBeat, Ns: uint64(i), Pid: 100, Nonce: uint64(i), Status: vlp.StatusOk, Payload: uint32(i)}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

func lines(s string) []string {
	if s == "" {
		return nil
	}
	l := strings.SplitAfter(s, "\n")
	if l[len(l)-1] == "" {
		l = l[:len(l)-1]
	}
	return l
}

// settledWriterGoroutines waits until the number of writer goroutines stops
// changing (one that closed done may still be returning) and returns it.
func settledWriterGoroutines(t *testing.T, want int) int {
	t.Helper()
	n := writerGoroutines()
	for deadline := time.Now().Add(5 * time.Second); n != want && time.Now().Before(deadline); n = writerGoroutines() {
		time.Sleep(5 * time.Millisecond)
	}
	return n
}

// writerGoroutines counts running writer goroutines of this package.
func writerGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return bytes.Count(buf, []byte("internal/events.(*Writer).run("))
}

func TestGoldenAllKinds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events")
	w := openT(t, Options{Path: path}, nil)
	for _, ev := range []Event{
		{Kind: KindBeat, Ns: 1000, Pid: 4242, Nonce: 1, Status: vlp.StatusOk, Payload: 0},
		{Kind: KindBeat, Ns: 2000, Pid: 4242, Nonce: 2, Status: vlp.StatusDegraded, Payload: 12},
		{Kind: KindBeat, Ns: 3000, Pid: 4243, Nonce: 1, Status: vlp.StatusCritical, Payload: 4294967295},
		{Kind: KindDecode, Ns: 3500, Text: "BadMagic"},
		{Kind: KindDecode, Ns: 3600, Text: "BadCrc { expected: 1857092459, actual: 1873869675 }"},
		{Kind: KindDecode, Ns: 3700, Text: "BadTimestamp(18446744073709551615)"},
		{Kind: KindIO, Ns: 3800, Text: "recvmsg: missing SCM_CREDENTIALS\tfrom\\peer\n"},
		{Kind: KindCtrunc, Ns: 3900, Text: "control message truncated\r"},
		{Kind: KindMismatch, Ns: 4000, Pid: 666, Text: MismatchAuthFailure},
		{Kind: KindMismatch, Ns: 4100, Pid: 667, Text: MismatchOriginConflict},
		{Kind: KindMismatch, Ns: 4200, Pid: 668, Text: MismatchNamespaceConflict},
		{Kind: KindStall, Ns: 1500003000, Pid: 4243, Nonce: 1, Status: vlp.StatusStall},
		{Kind: KindEviction, Ns: 9000000000, Pid: 4243},
	} {
		w.Emit(ev)
	}
	closeT(t, w)
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, got, "events.golden")
}

func TestOpenCreatesPrivateFileAndAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events")
	w := openT(t, Options{Path: path}, nil)
	w.Emit(beat(1))
	closeT(t, w)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("created with mode %04o, want 0600", perm)
	}
	// A second writer appends instead of truncating.
	w = openT(t, Options{Path: path}, nil)
	w.Emit(beat(2))
	closeT(t, w)
	if got, want := readFile(t, path), "1\tbeat\t100\t1\tok\t1\n2\tbeat\t100\t2\tok\t2\n"; got != want {
		t.Fatalf("file = %q, want %q", got, want)
	}
}

func TestOpenRefusesUnsafeFiles(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir, path string)
		wantErr error
		root    bool   // needs root (chown)
		detail  string // the error also names this, e.g. the file type found
	}{
		{"symlink to a file", func(t *testing.T, dir, path string) {
			target := filepath.Join(dir, "target")
			mustWrite(t, target, 0o600)
			mustSymlink(t, target, path)
		}, ErrSymlink, false, ""},
		{"dangling symlink", func(t *testing.T, dir, path string) {
			mustSymlink(t, filepath.Join(dir, "nowhere"), path)
		}, ErrSymlink, false, ""},
		{"directory", func(t *testing.T, dir, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, ErrNotRegular, false, "(a directory)"},
		{"named pipe without reader", func(t *testing.T, dir, path string) {
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}, ErrNotRegular, false, "(a named pipe)"},
		{"group readable", func(t *testing.T, dir, path string) { mustWrite(t, path, 0o640) }, ErrGroupOtherAccess, false, "mode 0640"},
		{"other writable", func(t *testing.T, dir, path string) { mustWrite(t, path, 0o602) }, ErrGroupOtherAccess, false, "mode 0602"},
		{"second hard link", func(t *testing.T, dir, path string) {
			other := filepath.Join(dir, "other-name")
			mustWrite(t, other, 0o600)
			if err := os.Link(other, path); err != nil {
				t.Fatal(err)
			}
		}, ErrHardLinks, false, "(2 links)"},
		{"other user's file", func(t *testing.T, dir, path string) {
			mustWrite(t, path, 0o600)
			if err := os.Chown(path, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, ErrNotOwner, true, "owner uid 65534"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && os.Geteuid() != 0 {
				t.Skip("needs root to chown a file to another user")
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "events")
			tt.setup(t, dir, path)
			before := snapshot(t, dir)
			w, err := Open(Options{Path: path}, nil)
			if err == nil {
				w.Close()
				t.Fatal("Open succeeded, want an error")
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Open error = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
			if !strings.Contains(err.Error(), tt.detail) {
				t.Fatalf("error %q does not say %q", err, tt.detail)
			}
			if after := snapshot(t, dir); after != before {
				t.Fatalf("Open changed the directory:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
	t.Run("character device", func(t *testing.T) {
		_, err := Open(Options{Path: os.DevNull}, nil)
		if !errors.Is(err, ErrNotRegular) {
			t.Fatalf("Open(%s) error = %v, want ErrNotRegular", os.DevNull, err)
		}
		if !strings.Contains(err.Error(), "(a character device)") {
			t.Fatalf("Open(%s) error %q does not name the file type", os.DevNull, err)
		}
	})
}

func mustWrite(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte("x\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask may have cleared bits
		t.Fatal(err)
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// snapshot describes every entry of dir: name, mode, size.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range ents {
		fi, err := os.Lstat(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%v:%d ", e.Name(), fi.Mode(), fi.Size())
	}
	return b.String()
}

func TestOpenInvalidOptions(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "events")
	tests := []struct {
		name string
		opts Options
	}{
		{"empty path", Options{}},
		{"max bytes below 4096", Options{Path: p, MaxBytes: 4095}},
		{"negative max bytes", Options{Path: p, MaxBytes: -1}},
		{"rotating stdout", Options{Path: "-", MaxBytes: 4096}},
		{"negative sync every", Options{Path: p, SyncEvery: -1}},
		{"negative queue", Options{Path: p, QueueSize: -1}},
		{"negative priority queue", Options{Path: p, PriorityQueueSize: -1}},
		{"negative flush interval", Options{Path: p, FlushInterval: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := Open(tt.opts, nil)
			if err == nil {
				w.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("error %v is not ErrInvalidOptions", err)
			}
		})
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("invalid options created the file (stat: %v)", err)
	}
}

func TestRotationKeepsFiveGenerations(t *testing.T) {
	const maxBytes = 4096
	dir := t.TempDir()
	path := filepath.Join(dir, "events")
	c := &stats.Counters{}
	w := openT(t, Options{Path: path, MaxBytes: maxBytes}, c)
	// Each line is about 40 bytes: 2000 lines ≈ 80 kB ≈ 20 rotations.
	const n = 2000
	for i := range n {
		w.Emit(Event{Kind: KindBeat, Ns: uint64(1_000_000 + i), Pid: 4242, Nonce: uint64(i), Payload: uint32(i)})
	}
	closeT(t, w)
	if d, e := c.ExportDropped.Load(), c.ExportIOErrors.Load(); d != 0 || e != 0 {
		t.Fatalf("dropped %d, io errors %d; want 0, 0", d, e)
	}
	// Oldest to newest: PATH.5 … PATH.1, PATH. Lines must be contiguous.
	names := []string{path + ".5", path + ".4", path + ".3", path + ".2", path + ".1", path}
	next := -1
	for _, name := range names {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatalf("generation missing: %v", err)
		}
		if fi.Size() > maxBytes {
			t.Fatalf("%s is %d bytes, more than MaxBytes %d", name, fi.Size(), maxBytes)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %04o, want 0600", name, fi.Mode().Perm())
		}
		for _, l := range lines(readFile(t, name)) {
			cols := strings.Split(strings.TrimSuffix(l, "\n"), "\t")
			if len(cols) != 6 || !strings.HasSuffix(l, "\n") {
				t.Fatalf("%s: malformed line %q", name, l)
			}
			i, err := strconv.Atoi(cols[3])
			if err != nil {
				t.Fatal(err)
			}
			if next >= 0 && i != next {
				t.Fatalf("%s: nonce %d follows %d: lines lost or reordered across rotation", name, i, next-1)
			}
			next = i + 1
		}
		if name != path && fi.Size() < maxBytes-100 {
			t.Fatalf("rotated %s is only %d bytes: rotated too early", name, fi.Size())
		}
	}
	if next != n {
		t.Fatalf("newest line has nonce %d, want %d", next-1, n-1)
	}
	if _, err := os.Stat(path + ".6"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s.6 exists (stat err %v): only 5 generations may be kept", path, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 6 {
		t.Fatalf("directory holds %d entries, want 6 (PATH and PATH.1-5)", len(ents))
	}
}

func TestSyncEvery(t *testing.T) {
	tests := []struct {
		syncEvery      int
		emit           int
		wantSyncs      uint64 // before Close
		wantLinesBefor int    // visible in the file before Close (flush interval is one hour)
	}{
		{0, 7, 0, 0},
		{1, 4, 4, 4},
		{3, 7, 2, 6},
		{10, 7, 0, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("every=%d/lines=%d", tt.syncEvery, tt.emit), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "events")
			w := openT(t, Options{Path: path, SyncEvery: tt.syncEvery, FlushInterval: time.Hour}, nil)
			for i := range tt.emit {
				w.Emit(beat(i))
			}
			testsupport.Eventually(t, 10*time.Second, "writer to format every line", func() bool { return w.written.Load() == uint64(tt.emit) })
			if got := w.syncs.Load(); got != tt.wantSyncs {
				t.Fatalf("fdatasyncs before Close = %d, want %d", got, tt.wantSyncs)
			}
			if got := len(lines(readFile(t, path))); got != tt.wantLinesBefor {
				t.Fatalf("lines on disk before Close = %d, want %d", got, tt.wantLinesBefor)
			}
			closeT(t, w)
			if got := w.syncs.Load(); got != tt.wantSyncs+1 {
				t.Fatalf("fdatasyncs after Close = %d, want %d (one more at shutdown)", got, tt.wantSyncs+1)
			}
			if got := len(lines(readFile(t, path))); got != tt.emit {
				t.Fatalf("lines after Close = %d, want %d", got, tt.emit)
			}
		})
	}
}

func TestReopenAfterRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events")
	c := &stats.Counters{}
	w := openT(t, Options{Path: path}, c)
	for i := range 3 {
		w.Emit(beat(i))
	}
	if err := os.Rename(path, path+".old"); err != nil { // what logrotate does
		t.Fatal(err)
	}
	w.Reopen()
	for i := 3; i < 5; i++ {
		w.Emit(beat(i))
	}
	closeT(t, w)
	old, cur := lines(readFile(t, path+".old")), lines(readFile(t, path))
	if len(old) != 3 || !strings.HasPrefix(old[0], "0\t") || !strings.HasPrefix(old[2], "2\t") {
		t.Fatalf("renamed file holds %q, want the 3 lines emitted before Reopen", old)
	}
	if len(cur) != 2 || !strings.HasPrefix(cur[0], "3\t") || !strings.HasPrefix(cur[1], "4\t") {
		t.Fatalf("new file holds %q, want the 2 lines emitted after Reopen", cur)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("reopened file mode %04o, want 0600", fi.Mode().Perm())
	}
	if e := c.ExportIOErrors.Load(); e != 0 {
		t.Fatalf("io errors = %d", e)
	}
}

func TestReopenRefusedKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events")
	c := &stats.Counters{}
	var logged []string
	var mu sync.Mutex
	logf := func(format string, args ...any) {
		mu.Lock()
		logged = append(logged, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	w := openT(t, Options{Path: path, Logf: logf}, c)
	w.Emit(beat(0))
	if err := os.Rename(path, path+".old"); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(dir, "elsewhere"), 0o600)
	mustSymlink(t, filepath.Join(dir, "elsewhere"), path) // planted symlink
	w.Reopen()
	w.Emit(beat(1))
	closeT(t, w)
	if got := lines(readFile(t, path+".old")); len(got) != 2 {
		t.Fatalf("old file holds %q, want both lines (the refused reopen keeps it)", got)
	}
	if got := readFile(t, filepath.Join(dir, "elsewhere")); got != "x\n" {
		t.Fatalf("symlink target was written: %q", got)
	}
	if e := c.ExportIOErrors.Load(); e != 1 {
		t.Fatalf("io errors = %d, want 1", e)
	}
	if len(logged) != 1 || !strings.Contains(logged[0], "symbolic link") {
		t.Fatalf("logged %q, want one message about the symlink", logged)
	}
}

func TestQueueOverflowKeepsPriorityEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events")
	c := &stats.Counters{}
	// The writer goroutine is not started yet, so nothing drains the queue.
	w, err := open(Options{Path: path, QueueSize: 8, PriorityQueueSize: 4}, c)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		w.Emit(beat(i))
		if i == 50 {
			w.Emit(Event{Kind: KindStall, Ns: 50, Pid: 7, Nonce: 3})
			w.Emit(Event{Kind: KindMismatch, Ns: 51, Pid: 8, Text: MismatchAuthFailure})
		}
	}
	w.Emit(Event{Kind: KindEviction, Ns: 200, Pid: 7})
	w.Emit(Event{Kind: KindDecode, Ns: 201, Text: "BadMagic"})
	if d := c.ExportDropped.Load(); d != 92 {
		t.Fatalf("dropped %d beats, want 92 (100 emitted, queue of 8)", d)
	}
	// The reserve is full now: a fifth priority event is dropped and counted.
	w.Emit(Event{Kind: KindIO, Ns: 202, Text: "lost"})
	if d := c.ExportDropped.Load(); d != 93 {
		t.Fatalf("dropped = %d after the reserve overflowed, want 93", d)
	}
	go w.run()
	closeT(t, w)
	want := "0\tbeat\t100\t0\tok\t0\n1\tbeat\t100\t1\tok\t1\n2\tbeat\t100\t2\tok\t2\n3\tbeat\t100\t3\tok\t3\n" +
		"4\tbeat\t100\t4\tok\t4\n5\tbeat\t100\t5\tok\t5\n6\tbeat\t100\t6\tok\t6\n7\tbeat\t100\t7\tok\t7\n" +
		"50\tstall\t7\t3\tstall\t-\n51\tmismatch\t8\t-\t-\tauth_failure\n" +
		"200\teviction\t7\t-\t-\t-\n201\tdecode\t-\t-\t-\tBadMagic\n"
	if got := readFile(t, path); got != want {
		t.Fatalf("file:\n%s\nwant:\n%s", got, want)
	}
}

// TestFloodAccounting floods a small queue from several goroutines while
// stalls are emitted: every stall must reach the file and every beat must be
// either written or counted as dropped.
func TestFloodAccounting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events")
	c := &stats.Counters{}
	w := openT(t, Options{Path: path, QueueSize: 64, PriorityQueueSize: 64}, c)
	const senders, perSender, stalls = 4, 20000, 50
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range perSender {
				w.Emit(Event{Kind: KindBeat, Ns: uint64(i), Pid: uint32(1000 + s), Nonce: uint64(i)})
			}
		})
	}
	wg.Go(func() {
		for i := range stalls {
			w.Emit(Event{Kind: KindStall, Ns: uint64(i), Pid: 9, Nonce: uint64(i)})
			time.Sleep(100 * time.Microsecond)
		}
	})
	wg.Wait()
	closeT(t, w)
	var beats, stallLines int
	for _, l := range lines(readFile(t, path)) {
		switch strings.Split(l, "\t")[1] {
		case "beat":
			beats++
		case "stall":
			stallLines++
		}
	}
	if stallLines != stalls {
		t.Fatalf("%d stall lines, want %d", stallLines, stalls)
	}
	if got := uint64(beats) + c.ExportDropped.Load(); got != senders*perSender {
		t.Fatalf("written %d + dropped %d = %d beats, want %d", beats, c.ExportDropped.Load(), got, senders*perSender)
	}
	t.Logf("beats written %d, dropped %d", beats, c.ExportDropped.Load())
}

func TestFlushedWithinInterval(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events")
	w := openT(t, Options{Path: path}, nil) // default 250 ms
	start := time.Now()
	w.Emit(Event{Kind: KindStall, Ns: 1, Pid: 2, Nonce: 3})
	testsupport.Eventually(t, 10*time.Second, "the line to reach the file", func() bool {
		b, _ := os.ReadFile(path)
		return string(b) == "1\tstall\t2\t3\tstall\t-\n"
	})
	t.Logf("visible to a reader after %v", time.Since(start))
	// A later line after an idle period is flushed too.
	w.Emit(Event{Kind: KindEviction, Ns: 4, Pid: 2})
	testsupport.Eventually(t, 10*time.Second, "the second line to reach the file", func() bool {
		return len(lines(readFile(t, path))) == 2
	})
}

func TestCloseIdempotentAndEmitAfterClose(t *testing.T) {
	before := settledWriterGoroutines(t, 0)
	path := filepath.Join(t.TempDir(), "events")
	c := &stats.Counters{}
	w, err := Open(Options{Path: path}, c)
	if err != nil {
		t.Fatal(err)
	}
	if n := settledWriterGoroutines(t, before+1); n != before+1 {
		buf := make([]byte, 1<<20)
		t.Fatalf("Open started %d writer goroutines, want 1\n%s", n-before, buf[:runtime.Stack(buf, true)])
	}
	w.Emit(beat(1))
	closeT(t, w)
	closeT(t, w)
	w.Emit(beat(2))
	w.Reopen()
	if d := c.ExportDropped.Load(); d != 1 {
		t.Fatalf("dropped = %d, want 1 (the beat emitted after Close)", d)
	}
	if got := lines(readFile(t, path)); len(got) != 1 {
		t.Fatalf("file holds %q, want the one line emitted before Close", got)
	}
	if n := settledWriterGoroutines(t, before); n != before {
		t.Fatalf("%d writer goroutines after Close, want %d", n, before)
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	before := settledWriterGoroutines(t, 0)
	dir := t.TempDir()
	for i := range 10 {
		w, err := Open(Options{Path: filepath.Join(dir, "events"), MaxBytes: 4096, SyncEvery: 3}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for j := range 200 {
			w.Emit(beat(i*1000 + j))
		}
		if i%2 == 0 {
			w.Reopen()
		}
		closeT(t, w)
	}
	if n := settledWriterGoroutines(t, before); n != before {
		t.Fatalf("%d writer goroutines left after Close, want %d", n, before)
	}
}

func TestEmitBeatDoesNotAllocate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events")
	w := openT(t, Options{Path: path}, nil)
	ev := Event{Kind: KindBeat, Ns: 1, Pid: 42, Nonce: 1, Status: vlp.StatusOk, Payload: 5}
	allocs := testing.AllocsPerRun(10000, func() {
		ev.Nonce++
		w.Emit(ev)
	})
	if allocs != 0 {
		t.Fatalf("Emit(beat) allocates %.2f times per call, want 0", allocs)
	}
}

func TestLogLimiter(t *testing.T) {
	var got []string
	l := logLimiter{logf: func(f string, a ...any) { got = append(got, fmt.Sprintf(f, a...)) }, lim: logthrottle.Every(10 * time.Second)}
	t0 := time.Unix(1000, 0)
	steps := []struct {
		at   time.Duration
		msg  string
		want string // "" = suppressed
	}{
		{0, "e1", "e1"},
		{time.Second, "e2", ""},
		{9 * time.Second, "e3", ""},
		{10 * time.Second, "e4", "e4 (2 similar errors suppressed)"},
		{25 * time.Second, "e5", "e5"},
	}
	for _, s := range steps {
		t.Run(s.msg, func(t *testing.T) {
			n := len(got)
			l.log(t0.Add(s.at), "%s", s.msg)
			switch {
			case s.want == "" && len(got) != n:
				t.Fatalf("logged %q, want it suppressed", got[n])
			case s.want != "" && (len(got) != n+1 || got[n] != s.want):
				t.Fatalf("logged %q, want %q", got[n:], s.want)
			}
		})
	}
}

// TestStdout writes to standard output ("-") in a child process and checks
// the bytes the parent reads from the pipe.
func TestStdout(t *testing.T) {
	if !inChild("stdout") {
		out := runChild(t, "TestStdout", "stdout")
		want := "1\tbeat\t100\t1\tok\t1\n2\tstall\t100\t2\tstall\t-\n"
		if !strings.HasPrefix(string(out), want) {
			t.Fatalf("child stdout = %q, want it to start with %q", out, want)
		}
		return
	}
	w := openT(t, Options{Path: "-"}, nil)
	w.Emit(beat(1))
	w.Emit(Event{Kind: KindStall, Ns: 2, Pid: 100, Nonce: 2})
	w.Reopen() // no-op for standard output
	closeT(t, w)
	if _, err := os.Stdout.Stat(); err != nil {
		t.Fatalf("Close closed standard output: %v", err)
	}
}

// checkGolden compares got with testdata/name (rewritten with -update).
func checkGolden(t *testing.T, got []byte, name string) {
	t.Helper()
	testsupport.CheckGolden(t, filepath.Join("testdata", name), got, *update, "-update")
}
