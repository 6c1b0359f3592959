package audit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestWriterRoundTrip(t *testing.T) {
	path := logPath(t)
	w := openWriter(t, Options{Path: path})
	if b := w.Boot(); b.Reason != BootFresh || b.Seq != 1 || !b.Created {
		t.Fatalf("boot = %+v, want fresh seq 1 created", b)
	}
	writeCycles(t, w, 0, 500)
	st := w.Stats()
	closeWriter(t, w)
	if st.Written != 501 || st.LastSeq != 501 || st.Dropped != 0 {
		t.Fatalf("stats = %+v", st)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("created with mode %o, want 600", perm)
	}
	lines := readLines(t, path)
	if string(lines[0]) != HeaderV2+"\n" {
		t.Fatalf("first line %q", lines[0])
	}
	if !bytes.Contains(lines[2], []byte("\t/usr/bin/restart agent\tinline\t")) {
		t.Fatalf("program not sanitized: %q", lines[2])
	}
	rep := verify(t, path, VerifyOptions{Anchor: &st.Head})
	requireIntact(t, rep)
	if rep.Records != 501 || rep.Head.Seq != 501 || rep.Head.Chain != st.Head || !rep.Anchor.Found {
		t.Fatalf("report: %s", dumpReport(rep))
	}
	head, err := ReadHead(path)
	if err != nil || head.Seq != 501 || head.Chain != st.Head {
		t.Fatalf("ReadHead = %+v, %v", head, err)
	}
}

// TestWriterRestartsAndRotations writes through several restarts and many
// rotations; the whole history (what is left of it) verifies.
func TestWriterRestartsAndRotations(t *testing.T) {
	path := logPath(t)
	next := 0
	var head Hash
	for run := 0; run < 4; run++ {
		w := openWriter(t, Options{Path: path, MaxBytes: 8192, QueueSize: 1024})
		want := BootResume
		if run == 0 {
			want = BootFresh
		}
		if got := w.Boot().Reason; got != want {
			t.Fatalf("run %d: boot reason %s, want %s", run, got, want)
		}
		writeCycles(t, w, next, 300)
		next += 300
		head = w.Stats().Head
		closeWriter(t, w)
	}
	gens, err := ListGenerations(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(gens) != Generations+1 {
		t.Fatalf("%d files, want %d", len(gens), Generations+1)
	}
	for _, g := range gens {
		if g.Generation > 0 && g.Size < 8192 {
			t.Fatalf("%s is %d bytes: rotated before MaxBytes", g.Path, g.Size)
		}
		lines := readLines(t, g.Path)
		r, err := ParseLine(bytes.TrimSuffix(lines[1], []byte("\n")))
		if err != nil || (g.Generation < Generations && r.Boot.Reason != BootRotation) {
			t.Fatalf("%s opens with %q (%v)", g.Path, lines[1], err)
		}
	}
	rep := verify(t, path, VerifyOptions{Anchor: &head})
	requireIntact(t, rep)
	if len(rep.ChainStarts) != 1 || !rep.ChainStarts[0].Continued {
		t.Fatalf("chain should start at a rotation boot of the oldest generation: %+v", rep.ChainStarts)
	}
}

func TestWriterRotationSmallQueueBurst(t *testing.T) {
	// Records enqueued while a rotation reserves its boot seq stay in order.
	path := logPath(t)
	w := openWriter(t, Options{Path: path, MaxBytes: 4096, QueueSize: 64})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				w.Refused(RefusedRecord{AgentPid: uint32(g + 1), Reason: ReasonDebounceCapacity.String()})
			}
		}(g)
	}
	wg.Wait()
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	// A burst into a 64-record queue drops records (their seqs are
	// spent); when the last ones were dropped, Close reports them as a
	// loss at the tail (recorded for the next boot). Any other error, or
	// that one without drops, fails.
	if err := w.Close(); err != nil && (st.Dropped == 0 || !strings.Contains(err.Error(), "could not be written")) {
		t.Fatalf("Close: %v", err)
	}
	if st.Rotations == 0 {
		t.Fatal("no rotation happened")
	}
	rep := verify(t, path, VerifyOptions{})
	if len(rep.Breaks) > 0 {
		t.Fatalf("breaks after concurrent enqueues and rotations:\n%s", dumpReport(rep))
	}
	if st.Dropped > 0 && rep.LostRecords == 0 && len(rep.Files) == Generations+1 {
		// Drops inside generations that rotated away cannot be seen.
		t.Logf("dropped %d; losses visible in the remaining generations: %d", st.Dropped, rep.LostRecords)
	}
}

func TestWriterQueueFullDrops(t *testing.T) {
	path := logPath(t)
	block := make(chan struct{})
	var once sync.Once
	first := true
	// The first sync after the boot record blocks the writer, so that the
	// queue fills up.
	o := withSyncHook(Options{Path: path, QueueSize: 4}, func(f *os.File) error {
		if first {
			first = false // the boot record's sync, inside Open
			return nil
		}
		once.Do(func() { <-block })
		return nil
	})
	w := openWriter(t, o)
	accepted, dropped := 0, 0
	for i := 0; i < 20; i++ {
		if w.Refused(RefusedRecord{AgentPid: 7, Reason: ReasonDebounced.String()}) {
			accepted++
		} else {
			dropped++
		}
	}
	close(block)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	// One more record after the drops makes the gap visible in the file.
	if !w.Refused(RefusedRecord{AgentPid: 7, Reason: ReasonDebounced.String()}) {
		t.Fatal("enqueue after the queue drained refused")
	}
	accepted++
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	closeWriter(t, w)
	if dropped == 0 || st.Dropped != uint64(dropped) {
		t.Fatalf("accepted %d dropped %d, stats %+v", accepted, dropped, st)
	}
	rep := verify(t, path, VerifyOptions{})
	requireIntact(t, rep)
	if rep.LostRecords != uint64(dropped) || rep.Records != uint64(accepted+1) {
		t.Fatalf("dropped %d, report:\n%s", dropped, dumpReport(rep))
	}
	strict := verify(t, path, VerifyOptions{Strict: true})
	if strict.Intact() {
		t.Fatal("--strict must fail on losses")
	}
}

func TestWriterInvalidRecords(t *testing.T) {
	w := openWriter(t, Options{Path: logPath(t)})
	defer closeWriter(t, w)
	bad := []struct {
		name string
		ok   bool
	}{
		{"empty program", w.Spawn(SpawnRecord{AgentPid: 1, ChildPid: 2, Source: SourceInline})},
		{"shell mode", w.Spawn(SpawnRecord{AgentPid: 1, ChildPid: 2, Mode: "shell", Program: "/bin/x", Source: SourceInline})},
		{"code and signal", w.Complete(CompleteRecord{AgentPid: 1, Outcome: OutcomeReaped, ExitCode: 0, Signal: 9})},
		{"unknown outcome", w.Complete(CompleteRecord{AgentPid: 1, Outcome: "exploded", ExitCode: 1})},
		{"exit code 256", w.Complete(CompleteRecord{AgentPid: 1, Outcome: OutcomeReaped, ExitCode: 256})},
		{"reap_failed with code", w.Complete(CompleteRecord{AgentPid: 1, Outcome: OutcomeReapFailed, ExitCode: 0})},
		{"empty reason", w.Refused(RefusedRecord{AgentPid: 1})},
	}
	for _, b := range bad {
		if b.ok {
			t.Errorf("%s: accepted", b.name)
		}
	}
	if got := w.Stats().Invalid; got != uint64(len(bad)) {
		t.Fatalf("Invalid = %d, want %d", got, len(bad))
	}
	if !w.Complete(CompleteRecord{AgentPid: 1, Outcome: OutcomeKilled, ExitCode: NoExitCode, Signal: 9}) {
		t.Fatal("killed by signal 9 refused")
	}
	if !w.Complete(CompleteRecord{AgentPid: 1, Outcome: OutcomeReapFailed, ExitCode: NoExitCode}) {
		t.Fatal("reap_failed refused")
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.LastSeq != 3 {
		t.Fatalf("invalid records consumed seqs: last seq %d, want 3", st.LastSeq)
	}
}

func TestWriterSyncCadence(t *testing.T) {
	tests := []struct {
		name      string
		opts      Options
		records   int
		wantSyncs uint64 // after the boot's own sync
	}{
		{"every record", Options{}, 10, 10},
		{"every 5", Options{SyncEvery: 5}, 10, 2},
		{"every 4, flush syncs the rest", Options{SyncEvery: 4}, 10, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var syncs int
			var mu sync.Mutex
			o := tc.opts
			o.Path = logPath(t)
			o = withSyncHook(o, func(*os.File) error { mu.Lock(); syncs++; mu.Unlock(); return nil })
			o.hooks.tick = time.Hour
			w := openWriter(t, o)
			for i := 0; i < tc.records; i++ {
				w.Refused(RefusedRecord{AgentPid: 3, Reason: ReasonDebounced.String()})
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			st := w.Stats()
			closeWriter(t, w)
			if st.Fsyncs != tc.wantSyncs {
				t.Fatalf("fsyncs = %d, want %d", st.Fsyncs, tc.wantSyncs)
			}
		})
	}
}

func TestWriterSyncInterval(t *testing.T) {
	var mu sync.Mutex
	syncs := 0
	o := withSyncHook(Options{Path: logPath(t), SyncEvery: 1000, SyncInterval: 5 * time.Millisecond, Now: time.Now},
		func(*os.File) error { mu.Lock(); syncs++; mu.Unlock(); return nil })
	w := openWriter(t, o)
	defer closeWriter(t, w)
	w.Refused(RefusedRecord{AgentPid: 3, Reason: ReasonDebounced.String()})
	deadline := time.Now().Add(5 * time.Second)
	for w.Stats().Fsyncs == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the interval never synced the pending record")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestWriterFsyncBudget(t *testing.T) {
	clock := newFakeClock(0)
	var observed []time.Duration
	var mu sync.Mutex
	o := Options{Path: logPath(t), Now: clock.Now, FsyncBudget: 50 * time.Millisecond,
		ObserveFsync: func(d time.Duration) { mu.Lock(); observed = append(observed, d); mu.Unlock() }}
	slow := true
	o = withSyncHook(o, func(*os.File) error {
		if slow {
			clock.Advance(80 * time.Millisecond)
		}
		return nil
	})
	o.hooks.tick = time.Hour // ticks are driven by hand below
	w := openWriter(t, o)
	defer closeWriter(t, w)
	for i := 0; i < 5; i++ {
		w.Refused(RefusedRecord{AgentPid: 3, Reason: ReasonDebounced.String()})
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	// The first record's sync is slow: counted, and the four records after
	// it are not synced one by one — Flush syncs them once.
	if st.FsyncBudgetExceeded < 1 || st.Fsyncs != 2 {
		t.Fatalf("stats %+v, want the first sync over budget and one deferred sync", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(observed) != int(st.Fsyncs) || observed[0] != 80*time.Millisecond {
		t.Fatalf("observed fsync durations %v", observed)
	}
}

func TestWriterWriteFailureRetries(t *testing.T) {
	path := logPath(t)
	var mu sync.Mutex
	failing := false
	o := withWriteHook(Options{Path: path}, func(f *os.File, b []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			// A short write: half of the line reaches the file, then ENOSPC.
			n, _ := f.Write(b[:len(b)/2])
			return n, syscall.ENOSPC
		}
		return f.Write(b)
	})
	o.hooks.tick = 5 * time.Millisecond
	w := openWriter(t, o)
	writeCycles(t, w, 0, 10)
	mu.Lock()
	failing = true
	mu.Unlock()
	for i := 10; i < 14; i++ {
		cycle(t, w, i)
	}
	deadline := time.Now().Add(5 * time.Second)
	for w.Stats().WriteErrors < 3 {
		if time.Now().After(deadline) {
			t.Fatal("the write was not retried")
		}
		time.Sleep(time.Millisecond)
	}
	if err := w.Flush(); err == nil {
		t.Fatal("Flush succeeded while the file is not writable")
	}
	// No partial line may be left behind while failing.
	if b, _ := os.ReadFile(path); len(b) == 0 || b[len(b)-1] != '\n' {
		t.Fatalf("partial line left in the file: %q", b[len(b)-40:])
	}
	mu.Lock()
	failing = false
	mu.Unlock()
	if err := w.Flush(); err != nil {
		t.Fatalf("Flush after recovery: %v", err)
	}
	closeWriter(t, w)
	rep := verify(t, path, VerifyOptions{})
	requireIntact(t, rep)
	if rep.Records != 15 || len(rep.Losses) != 0 {
		t.Fatalf("want all 15 records after the retry:\n%s", dumpReport(rep))
	}
}

func TestWriterCloseWhileUnwritable(t *testing.T) {
	path := logPath(t)
	var failing bool
	var mu sync.Mutex
	o := withWriteHook(Options{Path: path}, func(f *os.File, b []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			return 0, syscall.EIO
		}
		return f.Write(b)
	})
	w := openWriter(t, o)
	mu.Lock()
	failing = true
	mu.Unlock()
	w.Refused(RefusedRecord{AgentPid: 1, Reason: ReasonDebounced.String()})
	w.Refused(RefusedRecord{AgentPid: 1, Reason: ReasonDebounced.String()})
	err := w.Close()
	if err == nil || !strings.Contains(err.Error(), "could not be written") {
		t.Fatalf("Close = %v, want the lost records reported", err)
	}
	if st := w.Stats(); st.Dropped != 2 {
		t.Fatalf("dropped %d, want 2", st.Dropped)
	}
	if w.Refused(RefusedRecord{AgentPid: 1, Reason: ReasonDebounced.String()}) {
		t.Fatal("enqueue after Close accepted")
	}
	if !errors.Is(w.Close(), ErrClosed) || !errors.Is(w.Flush(), ErrClosed) {
		t.Fatal("second Close/Flush must report ErrClosed")
	}
	requireIntact(t, verify(t, path, VerifyOptions{}))
}

func TestOpenFileRules(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real.log")
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.log")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	hard := filepath.Join(dir, "hard.log")
	if err := os.WriteFile(hard, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(hard, filepath.Join(dir, "hard2.log")); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.log")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts Options
		want error
	}{
		{"symlink", Options{Path: link}, ErrSymlink},
		{"dangling symlink", Options{Path: mkDangling(t, dir)}, ErrSymlink},
		{"two hard links", Options{Path: hard}, ErrHardLinks},
		{"fifo", Options{Path: fifo}, ErrNotRegular},
		{"directory", Options{Path: dir}, ErrNotRegular},
		{"max bytes below 4096", Options{Path: target, MaxBytes: 100}, ErrInvalidOptions},
		{"empty path", Options{}, ErrInvalidOptions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, err := Open(tc.opts)
			if err == nil {
				w.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, tc.want) && !(tc.name == "directory" && errors.Is(err, syscall.EISDIR)) {
				t.Fatalf("Open = %v, want %v", err, tc.want)
			}
		})
	}
	// Readers refuse what is not a regular file too (without blocking on
	// a FIFO).
	if _, err := Verify(fifo, VerifyOptions{}); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("Verify(fifo) = %v, want %v", err, ErrNotRegular)
	}
}

func mkDangling(t *testing.T, dir string) string {
	p := filepath.Join(dir, "dangling.log")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenTwiceIsLocked(t *testing.T) {
	path := logPath(t)
	w := openWriter(t, Options{Path: path})
	_, err := Open(Options{Path: path})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if _, err := Rotate(path, RotateOptions{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("Rotate on a live file = %v, want ErrLocked", err)
	}
	closeWriter(t, w)
	w2 := openWriter(t, Options{Path: path})
	if w2.Boot().Reason != BootResume {
		t.Fatalf("reopen: %s", w2.Boot().Reason)
	}
	closeWriter(t, w2)
}
