package audit

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/varta-go/varta/pkg/logthrottle"
	"github.com/varta-go/varta/pkg/safefile"
)

// Defaults of Options (docs/audit.md, "How varta-watch writes it").
const (
	DefaultQueueSize   = 256
	DefaultSyncEvery   = 1
	DefaultFsyncBudget = 50 * time.Millisecond
	// MinMaxBytes is the smallest rotation threshold.
	MinMaxBytes = 4096
	// maintenanceTick paces retries and deferred syncs when SyncInterval
	// is off (or longer).
	maintenanceTick = 100 * time.Millisecond
	// logEvery rate-limits the Writer's warnings per kind of problem.
	logEvery = 10 * time.Second
	// rotateRetry spaces rotation attempts after a failure.
	rotateRetry = time.Second
)

// Options configure Open. Zero values take the defaults.
type Options struct {
	// Path of the audit file (--recovery-audit-file).
	Path string
	// MaxBytes rotates the file after a write that brings it to this size
	// (--recovery-audit-max-bytes). 0 disables rotation; otherwise ≥ 4096.
	MaxBytes int64
	// SyncEvery: fdatasync after every N records (default 1).
	SyncEvery int
	// SyncInterval: also fdatasync this long after the last sync when
	// records are pending (--audit-sync-interval-ms); 0 = off.
	SyncInterval time.Duration
	// FsyncBudget: a single fdatasync slower than this is counted and defers
	// further syncs to the next tick (--audit-fsync-budget-ms; default 50 ms).
	FsyncBudget time.Duration
	// QueueSize bounds the queue between the enqueue methods and the
	// writing goroutine (default 256).
	QueueSize int
	// GroupReadable (--files-group-readable) creates the audit file and
	// its rotations 0640 and adds group read to an existing file, for an
	// auditor group; the default is owner-only 0600.
	GroupReadable bool
	// DaemonPid is written in boot records; 0 means this process.
	DaemonPid uint32
	// Now is the wall clock for record timestamps, fsync timing and sync
	// intervals; nil means time.Now. It is called from the enqueue methods'
	// goroutines and the writing goroutine, so it must be safe for
	// concurrent use.
	Now func() time.Time
	// ObserveFsync, if set, is called (from the writing goroutine) with the
	// duration of every fdatasync, e.g. to feed varta_audit_fsync_seconds.
	ObserveFsync func(time.Duration)
	// Logger receives rate-limited warnings about write, sync and rotation
	// failures; nil discards them (they are always counted in Stats).
	Logger *slog.Logger

	hooks *writerHooks // tests only
}

// writerHooks replace system calls in tests.
type writerHooks struct {
	write    func(f *os.File, b []byte) (int, error)
	datasync func(f *os.File) error
	ops      *fileOps
	tick     time.Duration
}

// BootInfo describes the boot record Open wrote.
type BootInfo struct {
	Reason BootReason
	Seq    uint64
	Chain  Hash
	// TruncatedBytes is how many bytes of a torn tail were cut away
	// (corrupt_tail).
	TruncatedBytes int64
	// Created reports that Open created the file.
	Created bool
	// LostSeqs is how many seqs this boot skipped because the previous
	// daemon recorded in the seq note that it could not write them (see
	// SeqNotePath); the boot's seq follows the gap.
	LostSeqs uint64
}

// Stats is a snapshot of the Writer's counters.
type Stats struct {
	Enqueued uint64 // records accepted into the queue
	Written  uint64 // records written, boot records included
	// Dropped: records lost because the queue was full (their seq is
	// consumed, the chain did not advance) or because the file stayed
	// unwritable until Close. Alert-worthy data loss.
	Dropped             uint64
	Invalid             uint64 // records refused by validation (no seq consumed)
	WriteErrors         uint64 // failed write attempts (retried)
	Fsyncs              uint64
	FsyncErrors         uint64
	FsyncBudgetExceeded uint64 // fdatasyncs slower than FsyncBudget
	Rotations           uint64
	RotationErrors      uint64
	QueueLen            int
	LastSeq             uint64 // seq of the last record written
	Head                Hash   // its chain: the value to seal externally
	Bytes               int64  // size of the current file
}

// Writer appends records to an audit file for a daemon. Its enqueue
// methods never block; one goroutine writes, syncs and rotates.
type Writer struct {
	opts  Options
	hooks writerHooks
	boot  BootInfo
	log   *slog.Logger

	mu      sync.Mutex // guards nextSeq, closed and the send to queue
	nextSeq uint64
	closed  bool
	queue   chan Record

	flushCh chan chan error
	closeCh chan struct{}
	done    chan struct{}
	closeMu sync.Mutex
	closeEr error

	enqueued, written, dropped, invalid  atomic.Uint64
	writeErrors, fsyncs, fsyncErrors     atomic.Uint64
	fsyncSlow, rotations, rotationErrors atomic.Uint64
	headMu                               sync.Mutex
	headSeq                              uint64
	head                                 Hash
	headBytes                            int64
	warnLim                              map[string]logthrottle.Limiter // per kind of problem

	// Owned by the writing goroutine after Open returns.
	f         *os.File
	seqf      *os.File // the seq note; nil when it could not be opened
	prev      Hash
	size      int64 // bytes known good: every byte before it is complete lines
	dirtyTail bool  // a failed write left bytes after size that could not be cut
	pending   *pendingWrite
	unsynced  int
	lastSync  time.Time
	deferSync bool
	buf       []byte
	// Rotation state.
	rotating      bool      // no nested rotation while draining into PATH.1
	rotateMoved   bool      // PATH is already PATH.1; only the new file is missing
	rotateRetryAt time.Time // no attempt before this after a failure
}

// pendingWrite is a record whose write failed and will be retried.
type pendingWrite struct {
	rec    Record
	header bool // a v2 header goes before it (a new generation)
}

// Open opens (creating it 0600 if needed) and locks the audit file,
// inspects its tail, repairs a torn tail, writes the boot record and starts
// the writing goroutine. A second Open of the same file — from this or any
// other process — fails with ErrLocked until Close.
func Open(opts Options) (*Writer, error) {
	if err := normalize(&opts); err != nil {
		return nil, err
	}
	w := &Writer{
		opts:    opts,
		hooks:   writerHooks{write: (*os.File).Write, datasync: safefile.Datasync, tick: maintenanceTick},
		log:     opts.Logger,
		queue:   make(chan Record, opts.QueueSize),
		flushCh: make(chan chan error),
		closeCh: make(chan struct{}),
		done:    make(chan struct{}),
		warnLim: map[string]logthrottle.Limiter{},
	}
	ops := defaultFileOps()
	if h := opts.hooks; h != nil {
		if h.write != nil {
			w.hooks.write = h.write
		}
		if h.datasync != nil {
			w.hooks.datasync = h.datasync
		}
		if h.tick > 0 {
			w.hooks.tick = h.tick
		}
		if h.ops != nil {
			ops = *h.ops
		}
	}
	w.hooks.ops = &ops
	if opts.SyncInterval > 0 && opts.SyncInterval < w.hooks.tick {
		w.hooks.tick = opts.SyncInterval
	}
	f, created, err := openAuditFile(opts.Path, openCreate, opts.GroupReadable)
	if err != nil {
		return nil, err
	}
	if err := w.start(f, created); err != nil {
		f.Close()
		return nil, err
	}
	go w.run()
	return w, nil
}

func normalize(o *Options) error {
	switch {
	case o.Path == "":
		return fmt.Errorf("audit: empty Path: %w", ErrInvalidOptions)
	case o.MaxBytes != 0 && o.MaxBytes < MinMaxBytes:
		return fmt.Errorf("audit: MaxBytes %d below %d: %w", o.MaxBytes, MinMaxBytes, ErrInvalidOptions)
	case o.MaxBytes < 0, o.SyncEvery < 0, o.SyncInterval < 0, o.FsyncBudget < 0, o.QueueSize < 0:
		return fmt.Errorf("audit: negative option: %w", ErrInvalidOptions)
	}
	if o.SyncEvery == 0 {
		o.SyncEvery = DefaultSyncEvery
	}
	if o.FsyncBudget == 0 {
		o.FsyncBudget = DefaultFsyncBudget
	}
	if o.QueueSize == 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.DaemonPid == 0 {
		o.DaemonPid = uint32(os.Getpid())
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// start inspects the tail, repairs it and writes the boot record.
func (w *Writer) start(f *os.File, created bool) error {
	path := w.opts.Path
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat audit file %q: %w", path, err)
	}
	size := fi.Size()
	plan, err := planTail(f, size, prevGenerationTail(path))
	if err != nil {
		return fmt.Errorf("read audit file %q: %w", path, err)
	}
	seqf, err := openSeqNote(path)
	if err != nil {
		w.warn("seqnote", "audit seq note unusable; records lost at a later shutdown will not show as a gap", err)
	}
	var lossLine []byte
	var lostSeqs uint64
	if seqf != nil {
		// A loss is applied only when the file still ends where the note
		// says it did: an edited, rotated or replaced file ignores it.
		if note, ok := readSeqNote(seqf); ok && note.after == plan.prev && note.next > plan.nextSeq &&
			(plan.reason == BootResume || plan.reason == BootCorruptTail || plan.reason == BootRotation) {
			lossLine = lossComment(note, plan.nextSeq)
			lostSeqs = note.next - plan.nextSeq
			plan.nextSeq = note.next
		}
	}
	info := BootInfo{Reason: plan.reason, Seq: plan.nextSeq, Created: created, LostSeqs: lostSeqs}
	if plan.truncateTo >= 0 {
		info.TruncatedBytes = size - plan.truncateTo
		if err := f.Truncate(plan.truncateTo); err != nil {
			return fmt.Errorf("truncate torn tail of %q: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync %q after truncating its torn tail: %w", path, err)
		}
		size = plan.truncateTo
	}
	boot := Record{Seq: plan.nextSeq, Kind: KindBoot, Boot: BootRecord{
		WallclockMs: w.opts.Now().UnixMilli(), DaemonPid: w.opts.DaemonPid,
		PrevChain: plan.prev, HasPrevChain: plan.showPrev, Reason: plan.reason,
	}}
	buf, chain := headerAndBoot(nil, plan.needLF, plan.needHeader, &boot, plan.prev)
	if lossLine != nil {
		// The '#' line goes just before the boot record (after any LF or
		// header), so the file never ends with it.
		at := len(buf) - len(boot.AppendLine(nil))
		buf = append(buf[:at:at], append(lossLine, buf[at:]...)...)
	}
	closeNote := func() {
		if seqf != nil {
			seqf.Close()
		}
	}
	n, err := w.hooks.write(f, buf)
	if err != nil {
		if n > 0 {
			f.Truncate(size)
		}
		closeNote()
		return fmt.Errorf("write boot record to %q: %w", path, err)
	}
	if err := w.hooks.datasync(f); err != nil {
		closeNote()
		return fmt.Errorf("sync %q: %w", path, err)
	}
	if seqf != nil {
		// Clear the note (the gap is in the file now) and, on a first
		// boot, give it its blocks while the disk has room.
		if err := writeSeqNote(seqf, seqNote{}); err != nil {
			w.warn("seqnote", "audit seq note not writable; records lost at a later shutdown will not show as a gap", err)
			closeNote()
			seqf = nil
		}
	}
	w.seqf = seqf
	if created {
		if err := syncDir(path); err != nil {
			return err
		}
	}
	info.Chain = chain
	w.boot = info
	w.f, w.prev, w.size = f, chain, size+int64(n)
	w.nextSeq = plan.nextSeq + 1
	w.lastSync = w.opts.Now()
	w.written.Add(1)
	w.setHead(boot.Seq)
	return nil
}

// Boot describes the boot record written by Open.
func (w *Writer) Boot() BootInfo { return w.boot }

// Path returns the audit file's path.
func (w *Writer) Path() string { return w.opts.Path }

// Spawn enqueues a spawn record without blocking. It returns false when the
// record was dropped (queue full: its seq is consumed and Stats.Dropped
// counts it), is invalid (Stats.Invalid) or the Writer is closed.
// A zero WallclockMs is stamped with Options.Now.
func (w *Writer) Spawn(r SpawnRecord) bool {
	if r.WallclockMs == 0 {
		r.WallclockMs = w.opts.Now().UnixMilli()
	}
	return w.enqueue(Record{Kind: KindSpawn, Spawn: r})
}

// Complete enqueues a complete record without blocking; see Spawn.
func (w *Writer) Complete(r CompleteRecord) bool {
	if r.WallclockMs == 0 {
		r.WallclockMs = w.opts.Now().UnixMilli()
	}
	return w.enqueue(Record{Kind: KindComplete, Complete: r})
}

// Refused enqueues a refused record without blocking; see Spawn.
func (w *Writer) Refused(r RefusedRecord) bool {
	if r.WallclockMs == 0 {
		r.WallclockMs = w.opts.Now().UnixMilli()
	}
	return w.enqueue(Record{Kind: KindRefused, Refused: r})
}

// Control enqueues a control record (an operator action) without
// blocking; see Spawn.
func (w *Writer) Control(r ControlRecord) bool {
	if r.WallclockMs == 0 {
		r.WallclockMs = w.opts.Now().UnixMilli()
	}
	return w.enqueue(Record{Kind: KindControl, Control: r})
}

// Validate reports whether r would be written as a well-formed record (the
// enqueue methods refuse records that would not verify).
func Validate(r Record) error {
	r.Seq, r.Unchained = 1, true
	line := r.AppendLine(make([]byte, 0, 256))
	_, err := ParseLine(line[:len(line)-1])
	if err != nil {
		return fmt.Errorf("invalid %s record: %w", r.Kind, err)
	}
	return nil
}

func (w *Writer) enqueue(r Record) bool {
	if Validate(r) != nil {
		w.invalid.Add(1)
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	r.Seq = w.nextSeq
	w.nextSeq++
	select {
	case w.queue <- r:
		w.enqueued.Add(1)
		return true
	default:
		w.dropped.Add(1)
		return false
	}
}

// Stats returns a snapshot of the counters.
func (w *Writer) Stats() Stats {
	w.headMu.Lock()
	seq, head, size := w.headSeq, w.head, w.headBytes
	w.headMu.Unlock()
	return Stats{
		Enqueued: w.enqueued.Load(), Written: w.written.Load(), Dropped: w.dropped.Load(),
		Invalid: w.invalid.Load(), WriteErrors: w.writeErrors.Load(), Fsyncs: w.fsyncs.Load(),
		FsyncErrors: w.fsyncErrors.Load(), FsyncBudgetExceeded: w.fsyncSlow.Load(),
		Rotations: w.rotations.Load(), RotationErrors: w.rotationErrors.Load(),
		QueueLen: len(w.queue), LastSeq: seq, Head: head, Bytes: size,
	}
}

func (w *Writer) setHead(seq uint64) {
	w.headMu.Lock()
	w.headSeq, w.head, w.headBytes = seq, w.prev, w.size
	w.headMu.Unlock()
}

// Flush writes every record enqueued before the call and fdatasyncs. It
// returns an error while the file is not writable.
func (w *Writer) Flush() error {
	reply := make(chan error, 1)
	select {
	case w.flushCh <- reply:
	case <-w.done:
		return ErrClosed
	}
	return <-reply
}

// Close stops accepting records, drains the queue, writes, fdatasyncs,
// closes the file and releases its lock. Records that could not be written
// are counted as dropped and reported in the error.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return ErrClosed
	}
	w.closed = true
	w.mu.Unlock()
	close(w.closeCh)
	<-w.done
	w.closeMu.Lock()
	defer w.closeMu.Unlock()
	return w.closeEr
}

// run is the writing goroutine.
func (w *Writer) run() {
	defer close(w.done)
	ticker := time.NewTicker(w.hooks.tick)
	defer ticker.Stop()
	for {
		in := w.queue
		if w.pending != nil {
			in = nil // stop consuming while the file is not writable
		}
		select {
		case r := <-in:
			w.write(pendingWrite{rec: r})
			w.drain(len(w.queue))
		case <-ticker.C:
			w.tick()
		case reply := <-w.flushCh:
			reply <- w.flush()
		case <-w.closeCh:
			w.shutdown()
			return
		}
	}
}

// drain writes up to n queued records without waiting.
func (w *Writer) drain(n int) {
	for ; n > 0 && w.pending == nil; n-- {
		select {
		case r := <-w.queue:
			w.write(pendingWrite{rec: r})
		default:
			return
		}
	}
}

// write appends one record, linking it to the previous one. On failure the
// file is cut back to the last complete line and the record is kept for a
// retry; the chain does not advance.
func (w *Writer) write(p pendingWrite) bool {
	if w.dirtyTail {
		if err := w.f.Truncate(w.size); err != nil {
			w.failWrite(p, fmt.Errorf("cut partial line of %q: %w", w.opts.Path, err))
			return false
		}
		w.dirtyTail = false
	}
	rec := p.rec
	w.buf, _ = headerAndBoot(w.buf[:0], false, p.header, &rec, w.prev)
	n, err := w.hooks.write(w.f, w.buf)
	if err != nil {
		if n > 0 {
			if terr := w.f.Truncate(w.size); terr != nil {
				w.dirtyTail = true
			}
		}
		w.failWrite(p, fmt.Errorf("write audit record seq %d to %q: %w", rec.Seq, w.opts.Path, err))
		return false
	}
	w.pending = nil
	w.size += int64(n)
	w.prev = rec.Chain
	w.written.Add(1)
	w.setHead(rec.Seq)
	w.unsynced++
	if !w.deferSync && w.unsynced >= w.opts.SyncEvery {
		w.sync()
	}
	if p.header {
		// The first record of a new generation: make it and the directory
		// entry durable now.
		w.sync()
		if err := syncDir(w.opts.Path); err != nil {
			w.warn("rotate", "audit directory sync failed after rotation", err)
		}
	}
	if w.opts.MaxBytes > 0 && w.size >= w.opts.MaxBytes {
		w.rotate()
	}
	return true
}

func (w *Writer) failWrite(p pendingWrite, err error) {
	w.writeErrors.Add(1)
	w.pending = &p
	w.warn("write", "audit log write failed; will retry", err)
}

// sync fdatasyncs and accounts for its duration.
func (w *Writer) sync() error {
	start := w.opts.Now()
	err := w.hooks.datasync(w.f)
	d := w.opts.Now().Sub(start)
	w.fsyncs.Add(1)
	if w.opts.ObserveFsync != nil {
		w.opts.ObserveFsync(d)
	}
	if err != nil {
		w.fsyncErrors.Add(1)
		w.warn("sync", "audit log fdatasync failed; will retry", err)
		return err
	}
	w.unsynced = 0
	w.lastSync = w.opts.Now()
	if d > w.opts.FsyncBudget {
		w.fsyncSlow.Add(1)
		w.deferSync = true
	}
	return nil
}

// tick retries a failed write, performs deferred and interval syncs.
func (w *Writer) tick() {
	deferred := w.deferSync
	w.deferSync = false
	if w.pending != nil {
		if !w.write(*w.pending) {
			return
		}
		w.drain(len(w.queue))
	}
	if w.unsynced == 0 {
		return
	}
	due := deferred || w.unsynced >= w.opts.SyncEvery
	if iv := w.opts.SyncInterval; iv > 0 && w.opts.Now().Sub(w.lastSync) >= iv {
		due = true
	}
	if due {
		w.sync()
	}
}

// flush drains what is queued now and syncs regardless of deferral.
func (w *Writer) flush() error {
	if w.pending != nil && !w.write(*w.pending) {
		return fmt.Errorf("flush audit log %q: file not writable", w.opts.Path)
	}
	w.drain(len(w.queue))
	if w.pending != nil {
		return fmt.Errorf("flush audit log %q: file not writable", w.opts.Path)
	}
	if w.unsynced > 0 {
		return w.sync()
	}
	return nil
}

// shutdown drains everything, syncs and closes the file (releasing the lock).
func (w *Writer) shutdown() {
	var errs []error
	if w.pending != nil {
		w.write(*w.pending)
	}
	for w.pending == nil {
		select {
		case r := <-w.queue:
			w.write(pendingWrite{rec: r})
			continue
		default:
		}
		break
	}
	if w.pending != nil {
		lost := 1 + len(w.queue)
		for len(w.queue) > 0 {
			<-w.queue
		}
		w.pending = nil
		w.dropped.Add(uint64(lost))
	}
	// Every seq after the last record written was assigned to a record
	// that is not in the file (unwritable at close, or dropped from a full
	// queue after it): record where the next boot must start, so that they
	// show as a gap instead of being reused.
	w.mu.Lock()
	next := w.nextSeq
	w.mu.Unlock()
	w.headMu.Lock()
	lastSeq := w.headSeq
	w.headMu.Unlock()
	if tail := next - 1 - lastSeq; next-1 > lastSeq {
		err := fmt.Errorf("close audit log %q: %d record(s) could not be written (seq %d..%d)", w.opts.Path, tail, lastSeq+1, next-1)
		switch {
		case w.seqf == nil:
			err = fmt.Errorf("%w; the seq note is unusable, so the next boot will reuse these seqs", err)
		default:
			if nerr := writeSeqNote(w.seqf, seqNote{next: next, lost: tail, pid: w.opts.DaemonPid, after: w.prev}); nerr != nil {
				err = fmt.Errorf("%w; recording the gap failed, so the next boot will reuse these seqs: %w", err, nerr)
			} else {
				err = fmt.Errorf("%w; recorded in %s: the next boot leaves them as a gap", err, w.seqf.Name())
			}
		}
		errs = append(errs, err)
	}
	if w.seqf != nil {
		w.seqf.Close()
	}
	if w.unsynced > 0 || w.dirtyTail {
		if w.dirtyTail {
			w.f.Truncate(w.size)
		}
		if err := w.sync(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := w.f.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close audit file %q: %w", w.opts.Path, err))
	}
	w.closeMu.Lock()
	w.closeEr = errors.Join(errs...)
	w.closeMu.Unlock()
}

// rotate implements rotation (docs/audit.md, "How varta-watch writes it") from the writing goroutine. Records that
// were enqueued before the rotation boot's seq was reserved are written to
// the old generation first, so that seq stays increasing across files.
// A failure is counted and retried after rotateRetry; when PATH was already
// moved to PATH.1, the retry only creates the new file.
func (w *Writer) rotate() {
	if w.rotating || w.opts.Now().Before(w.rotateRetryAt) {
		return
	}
	w.rotating = true
	defer func() { w.rotating = false }()
	path := w.opts.Path
	if !w.rotateMoved {
		if err := w.sync(); err != nil {
			w.rotationFailed(err)
			return
		}
		moved, err := shiftGenerations(path, w.f, *w.hooks.ops)
		if err != nil {
			w.rotationFailed(err)
			return
		}
		w.f, w.rotateMoved = moved, true
	}
	next, _, err := openAuditFile(path, openExclusive, w.opts.GroupReadable)
	if err != nil {
		// PATH.1 holds everything; keep appending to it and retry later.
		w.rotationFailed(fmt.Errorf("create new audit generation: %w", err))
		return
	}
	w.rotateMoved = false
	w.mu.Lock()
	bootSeq := w.nextSeq
	w.nextSeq++
	older := len(w.queue)
	w.mu.Unlock()
	w.drain(older)
	if w.pending != nil {
		// PATH.1 became unwritable: those records are lost (a seq gap).
		lost := uint64(1)
		w.pending = nil
		for i := 1; i < older && len(w.queue) > 0; i++ {
			<-w.queue
			lost++
		}
		w.dropped.Add(lost)
		w.warn("rotate", "audit records lost while rotating", fmt.Errorf("%d record(s) could not be written to %s", lost, GenerationPath(path, 1)))
	}
	if w.unsynced > 0 {
		w.sync()
	}
	old := w.f
	w.f, w.size, w.dirtyTail, w.unsynced = next, 0, false, 0
	old.Close()
	w.rotations.Add(1)
	boot := Record{Seq: bootSeq, Kind: KindBoot, Boot: BootRecord{
		WallclockMs: w.opts.Now().UnixMilli(), DaemonPid: w.opts.DaemonPid,
		PrevChain: w.prev, HasPrevChain: true, Reason: BootRotation,
	}}
	w.write(pendingWrite{rec: boot, header: true}) // on failure, retried by tick
}

func (w *Writer) rotationFailed(err error) {
	w.rotationErrors.Add(1)
	w.rotateRetryAt = w.opts.Now().Add(rotateRetry)
	w.warn("rotate", "audit log rotation failed; will retry", err)
}

// warn logs at most once per logEvery per kind of problem.
func (w *Writer) warn(kind, msg string, err error) {
	if w.log == nil {
		return
	}
	l, ok := w.warnLim[kind]
	if !ok {
		l = logthrottle.Every(logEvery)
	}
	allowed := l.AllowAt(w.opts.Now())
	var n uint64
	if allowed {
		n = l.TakeSuppressed()
	}
	w.warnLim[kind] = l
	if allowed {
		w.log.Warn(msg, "path", w.opts.Path, "err", err, "suppressed", n)
	}
}
