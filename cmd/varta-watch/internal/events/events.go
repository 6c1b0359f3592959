package events

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/pkg/logthrottle"
	"github.com/varta-go/varta/pkg/safefile"
)

// Defaults and limits of Options.
const (
	DefaultQueueSize         = 65536
	DefaultPriorityQueueSize = 4096
	DefaultFlushInterval     = 250 * time.Millisecond
	MinMaxBytes              = 4096
	Generations              = 5 // rotated files kept: PATH.1 … PATH.5
	StdoutPath               = "-"
)

const (
	batchSize      = 256              // events taken from the queue per lock
	bufSize        = 64 << 10         // write buffer
	flushAt        = bufSize - 4<<10  // write out when the buffer holds this much
	retryOpenEvery = time.Second      // reopen attempts while the file is missing
	logEvery       = 10 * time.Second // at most one I/O error log line per period
)

// ErrInvalidOptions is returned by Open for option values outside their
// bounds.
var ErrInvalidOptions = errors.New("invalid events file options")

// Options configures the events file.
type Options struct {
	// Path of the events file. "-" writes to standard output (no rotation,
	// no ownership checks, no fdatasync, Reopen does nothing).
	Path string
	// MaxBytes rotates the file before a line would take it past this size.
	// 0 disables rotation; otherwise at least MinMaxBytes. Generations
	// rotated files are kept (PATH.1 newest … PATH.5 oldest).
	MaxBytes int64
	// SyncEvery fdatasyncs after every N lines written. 0 syncs only at
	// rotation, Reopen and Close.
	SyncEvery int
	// GroupReadable (--files-group-readable) creates the file 0640 and
	// makes an existing 0600 file 0640, for a log-shipper group; the group
	// may read, never write. Off, the file must be owner-only.
	GroupReadable bool
	// QueueSize bounds the events waiting to be written; beats beyond it
	// are dropped and counted. 0 means DefaultQueueSize.
	QueueSize int
	// PriorityQueueSize is the room reserved on top of QueueSize for
	// non-beat events, which beats can never take. 0 means
	// DefaultPriorityQueueSize.
	PriorityQueueSize int
	// FlushInterval bounds how long a line may sit in the write buffer.
	// 0 means DefaultFlushInterval.
	FlushInterval time.Duration
	// Format selects the line format: FormatTSV (the default, the
	// Rust-compatible six columns) or FormatJSON.
	Format Format
	// Wall converts an event's observer_ns to wall-clock time for the JSON
	// format's "time"; nil uses the time the line is formatted.
	Wall func(ns uint64) time.Time
	// Kinds selects the kinds written (--export-kinds); the zero set writes
	// every kind. Events of other kinds are ignored by Emit (not counted:
	// leaving them out is configuration, not loss).
	Kinds KindSet
	// Terminal renders lines for a person (wall-clock time, aligned
	// columns) instead of the file format. Only for Path "-" when standard
	// output is a terminal; a file always gets the file format.
	Terminal bool
	// Logf receives I/O error messages, at most one per 10 s (later ones
	// are summarised with a suppressed count). nil discards them.
	Logf func(format string, args ...any)
}

func (o *Options) normalize() error {
	switch {
	case o.Path == "":
		return fmt.Errorf("%w: empty path", ErrInvalidOptions)
	case o.MaxBytes < 0 || (o.MaxBytes > 0 && o.MaxBytes < MinMaxBytes):
		return fmt.Errorf("%w: max bytes %d: must be 0 (no rotation) or at least %d", ErrInvalidOptions, o.MaxBytes, MinMaxBytes)
	case o.MaxBytes > 0 && o.Path == StdoutPath:
		return fmt.Errorf("%w: max bytes %d: standard output cannot be rotated", ErrInvalidOptions, o.MaxBytes)
	case o.SyncEvery < 0:
		return fmt.Errorf("%w: sync every %d: must not be negative", ErrInvalidOptions, o.SyncEvery)
	case o.QueueSize < 0:
		return fmt.Errorf("%w: queue size %d: must not be negative", ErrInvalidOptions, o.QueueSize)
	case o.PriorityQueueSize < 0:
		return fmt.Errorf("%w: priority queue size %d: must not be negative", ErrInvalidOptions, o.PriorityQueueSize)
	case o.FlushInterval < 0:
		return fmt.Errorf("%w: flush interval %v: must not be negative", ErrInvalidOptions, o.FlushInterval)
	case o.Terminal && o.Path != StdoutPath:
		return fmt.Errorf("%w: terminal rendering is for standard output only", ErrInvalidOptions)
	case o.Format >= numFormats:
		return fmt.Errorf("%w: format %d: must be tsv or json", ErrInvalidOptions, o.Format)
	}
	if o.QueueSize == 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.PriorityQueueSize == 0 {
		o.PriorityQueueSize = DefaultPriorityQueueSize
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	return nil
}

// Writer writes the events file. Emit, Reopen and Close are safe for
// concurrent use.
type Writer struct {
	c    *stats.Counters
	opts Options

	// The queue: a ring of events. Beats are admitted while fewer than
	// beatCap events wait, other kinds while fewer than len(ring).
	mu            sync.Mutex
	ring          []Event
	head, count   int
	beatCap       int
	pushed, taken uint64 // events ever queued / ever taken by the writer
	reopenSeq     uint64 // reopen once taken reaches this
	reopenPending bool
	closed        bool

	wake chan struct{} // cap 1: the queue went from empty to non-empty, or Reopen
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the writer goroutine has finished

	closeOnce sync.Once
	closeErr  error

	syncs   atomic.Uint64 // successful fdatasyncs (tests observe this)
	written atomic.Uint64 // events formatted by the writer goroutine

	// Owned by the writer goroutine (and by Open before it starts).
	f           *os.File
	stdout      bool
	uid         int
	size        int64 // bytes in the current file
	rotateAt    int64 // rotate before size would exceed this (MaxBytes, or later after a failed rotation)
	buf         []byte
	sinceSync   int
	needNL      bool // the file may end in a torn line that could not be cut back
	retryOpenAt time.Time
	flushTimer  *time.Timer
	timerArmed  bool
	log         logLimiter
	finalErr    error
}

// Open opens (creating it 0600, or 0640 with GroupReadable, if needed) the
// events file and starts the writer goroutine. An existing file must be a
// regular file owned by the effective uid with no group or other permission
// bits (group read allowed, and added, with GroupReadable), and is never
// followed through a symbolic link; otherwise Open fails with an error
// naming the file and the rule (ErrSymlink, ErrNotRegular, ErrNotOwner,
// ErrGroupOtherAccess). c may be nil.
func Open(opts Options, c *stats.Counters) (*Writer, error) {
	w, err := open(opts, c)
	if err != nil {
		return nil, err
	}
	go w.run()
	return w, nil
}

// open prepares a Writer without starting its goroutine.
func open(opts Options, c *stats.Counters) (*Writer, error) {
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	if c == nil {
		c = &stats.Counters{}
	}
	w := &Writer{
		c:       c,
		opts:    opts,
		ring:    make([]Event, opts.QueueSize+opts.PriorityQueueSize),
		beatCap: opts.QueueSize,
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		uid:     os.Geteuid(),
		buf:     make([]byte, 0, bufSize),
		log:     logLimiter{logf: opts.Logf, lim: logthrottle.Every(logEvery)},
	}
	w.rotateAt = opts.MaxBytes
	if opts.Path == StdoutPath {
		w.f, w.stdout = os.Stdout, true
	} else {
		f, size, err := openChecked(opts.Path, w.uid, opts.GroupReadable)
		if err != nil {
			return nil, err
		}
		w.f, w.size = f, size
	}
	w.flushTimer = time.NewTimer(time.Hour)
	w.flushTimer.Stop()
	return w, nil
}

// Emit queues ev for writing. It never blocks on I/O and does not allocate.
// When the queue is full the event is dropped and counted in
// ExportDropped; beats are dropped first (they may only use QueueSize
// slots), other kinds also use the PriorityQueueSize reserve. Events
// emitted after Close, or with an unknown Kind, are dropped and counted.
func (w *Writer) Emit(ev Event) {
	limit := len(w.ring)
	if ev.Kind == KindBeat {
		limit = w.beatCap
	} else if ev.Kind >= numKinds {
		w.c.ExportDropped.Add(1)
		return
	}
	if !w.opts.Kinds.Has(ev.Kind) {
		return
	}
	w.mu.Lock()
	if w.closed || w.count >= limit {
		w.mu.Unlock()
		w.c.ExportDropped.Add(1)
		return
	}
	i := w.head + w.count
	if i >= len(w.ring) {
		i -= len(w.ring)
	}
	w.ring[i] = ev
	w.count++
	w.pushed++
	wasEmpty := w.count == 1
	w.mu.Unlock()
	if wasEmpty {
		w.signal()
	}
}

// Reopen asks the writer to close the events file and open PATH again, for
// example after logrotate renamed it (SIGHUP). It returns at once; lines
// emitted before the call go to the old file, later ones to the new file.
// Calls that arrive before the previous one was carried out are coalesced.
// If PATH cannot be opened, the old file stays in use and the error is
// counted and logged. Reopen does nothing for standard output.
func (w *Writer) Reopen() {
	if w.stdout {
		return
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.reopenSeq = w.pushed
	w.reopenPending = true
	w.mu.Unlock()
	w.signal()
}

// Close writes every queued event, flushes, fdatasyncs and closes the file
// (standard output is flushed but not closed), and stops the writer
// goroutine. It is idempotent; later calls return the first call's result.
// The error reports a failure of the final flush, fdatasync or close.
func (w *Writer) Close() error {
	w.closeOnce.Do(func() {
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
		close(w.stop)
		<-w.done
		w.closeErr = w.finalErr
	})
	return w.closeErr
}

func (w *Writer) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// take moves up to len(dst) queued events into dst. reopen reports that the
// caller must reopen the file after writing them; closed that Close was
// called (so nothing more will be queued).
func (w *Writer) take(dst []Event) (n int, reopen, closed bool) {
	w.mu.Lock()
	n = min(w.count, len(dst))
	if w.reopenPending {
		n = min(n, int(w.reopenSeq-w.taken))
	}
	for k := 0; k < n; {
		end := min(w.head+(n-k), len(w.ring))
		seg := w.ring[w.head:end]
		copy(dst[k:], seg)
		clear(seg) // drop references to Text strings
		k += len(seg)
		w.head = end
		if w.head == len(w.ring) {
			w.head = 0
		}
	}
	w.count -= n
	w.taken += uint64(n)
	if w.reopenPending && w.taken == w.reopenSeq {
		reopen, w.reopenPending = true, false
	}
	closed = w.closed
	w.mu.Unlock()
	return n, reopen, closed
}

// run is the writer goroutine.
func (w *Writer) run() {
	defer close(w.done)
	defer w.flushTimer.Stop()
	batch := make([]Event, batchSize)
	for {
		n, reopen, closed := w.take(batch)
		for i := range batch[:n] {
			w.writeEvent(&batch[i])
		}
		clear(batch[:n])
		w.written.Add(uint64(n))
		if reopen {
			w.reopen()
		}
		if n > 0 || reopen {
			// Busy: still honour the flush interval.
			select {
			case <-w.flushTimer.C:
				w.timerArmed = false
				w.flush()
			default:
			}
			continue
		}
		if closed {
			w.finish()
			return
		}
		select {
		case <-w.wake:
		case <-w.stop:
		case <-w.flushTimer.C:
			w.timerArmed = false
			w.flush()
		}
	}
}

// writeEvent formats ev into the buffer, rotating first if the line would
// take the file past MaxBytes.
func (w *Writer) writeEvent(ev *Event) {
	start := len(w.buf)
	if w.opts.Format == FormatJSON {
		w.buf = w.appendJSON(w.buf, ev)
	} else if w.opts.Terminal {
		w.buf = w.appendHuman(w.buf, ev)
	} else {
		w.buf = appendLine(w.buf, ev)
	}
	if w.opts.MaxBytes > 0 && w.size+int64(len(w.buf)) > w.rotateAt && w.size+int64(start) > 0 {
		w.writeOut(start)
		w.rotate()
	}
	w.sinceSync++
	if !w.timerArmed {
		w.flushTimer.Reset(w.opts.FlushInterval)
		w.timerArmed = true
	}
	switch {
	case w.opts.SyncEvery > 0 && w.sinceSync >= w.opts.SyncEvery:
		w.flush()
		w.datasync()
	case len(w.buf) >= flushAt:
		w.flush()
	}
}

// flush writes the whole buffer out.
func (w *Writer) flush() { w.writeOut(len(w.buf)) }

// writeOut writes the first n bytes of the buffer, which must end at a line
// boundary, and keeps the rest. Lines that cannot be written are dropped and
// counted; a line torn by a failing write is cut off the file again.
func (w *Writer) writeOut(n int) {
	if n == 0 {
		return
	}
	p := w.buf[:n]
	defer func() { w.buf = append(w.buf[:0], w.buf[n:]...) }()
	// Lines are counted only when they are dropped, not on every write.
	if w.f == nil && !w.retryOpen() {
		w.c.ExportDropped.Add(countLines(p))
		return
	}
	if w.needNL {
		if _, err := w.f.Write([]byte{'\n'}); err != nil {
			w.ioError("write", err)
			w.c.ExportDropped.Add(countLines(p))
			return
		}
		w.size++
		w.needNL = false
	}
	nw, err := w.f.Write(p)
	w.size += int64(nw)
	if err == nil {
		return
	}
	w.ioError("write", err)
	whole := bytes.LastIndexByte(p[:nw], '\n') + 1
	if whole < nw {
		w.cutTornLine(int64(nw - whole))
	}
	w.c.ExportDropped.Add(countLines(p[whole:]))
}

func countLines(p []byte) uint64 { return uint64(bytes.Count(p, []byte{'\n'})) }

// cutTornLine truncates the torn trailing partial line of torn bytes off the
// file. If that is impossible (standard output, or truncate fails), the next
// write starts with a newline so the fragment ends up on its own line.
func (w *Writer) cutTornLine(torn int64) {
	if !w.stdout {
		if fi, err := w.f.Stat(); err == nil && fi.Size() >= torn {
			good := fi.Size() - torn
			err := w.f.Truncate(good)
			if err == nil {
				w.size = good
				return
			}
			w.ioError("truncate torn line", err)
		}
	}
	w.needNL = true
}

func (w *Writer) datasync() {
	w.sinceSync = 0
	if w.f == nil || w.stdout {
		return
	}
	if err := safefile.Datasync(w.f); err != nil {
		w.ioError("fdatasync", err)
		return
	}
	w.syncs.Add(1)
}

func (w *Writer) generation(i int) string { return fmt.Sprintf("%s.%d", w.opts.Path, i) }

// rotate renames PATH.4→PATH.5 … PATH→PATH.1 and opens a new PATH. The
// caller has written the buffer out up to the line that triggered it.
func (w *Writer) rotate() {
	w.datasync()
	if w.f != nil {
		if err := w.f.Close(); err != nil {
			w.ioError("close before rotation", err)
		}
		w.f = nil
	}
	for i := Generations - 1; i >= 1; i-- {
		if err := os.Rename(w.generation(i), w.generation(i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			w.ioError("rotate", err)
		}
	}
	renamed := true
	if err := os.Rename(w.opts.Path, w.generation(1)); err != nil && !errors.Is(err, os.ErrNotExist) {
		w.ioError("rotate", err)
		renamed = false
	}
	w.size, w.rotateAt = 0, w.opts.MaxBytes
	if w.openCurrent() && !renamed {
		// PATH is still the big file: try again only after another
		// MaxBytes instead of on every line.
		w.rotateAt = w.size + w.opts.MaxBytes
	}
}

// reopen opens PATH anew and switches to it, keeping the old file if that
// fails.
func (w *Writer) reopen() {
	f, size, err := openChecked(w.opts.Path, w.uid, w.opts.GroupReadable)
	if err != nil {
		w.ioError("reopen", err)
		return
	}
	w.flush()
	w.datasync()
	if w.f != nil {
		if err := w.f.Close(); err != nil {
			w.ioError("close before reopen", err)
		}
	}
	w.f, w.size, w.needNL = f, size, false
	w.rotateAt = w.opts.MaxBytes
}

// openCurrent opens PATH after rotation; on failure lines are dropped until
// a retry succeeds.
func (w *Writer) openCurrent() bool {
	f, size, err := openChecked(w.opts.Path, w.uid, w.opts.GroupReadable)
	if err != nil {
		w.ioError("open", err)
		w.retryOpenAt = time.Now().Add(retryOpenEvery)
		return false
	}
	w.f, w.size, w.needNL = f, size, false
	return true
}

func (w *Writer) retryOpen() bool {
	if time.Now().Before(w.retryOpenAt) {
		return false
	}
	return w.openCurrent()
}

// finish runs once the queue is drained after Close.
func (w *Writer) finish() {
	w.flush()
	if w.f == nil {
		return
	}
	if w.stdout {
		return
	}
	var errs []error
	if err := safefile.Datasync(w.f); err != nil {
		w.c.ExportIOErrors.Add(1)
		errs = append(errs, fmt.Errorf("fdatasync events file %q: %w", w.opts.Path, err))
	} else {
		w.syncs.Add(1)
	}
	if err := w.f.Close(); err != nil {
		w.c.ExportIOErrors.Add(1)
		errs = append(errs, fmt.Errorf("close events file %q: %w", w.opts.Path, err))
	}
	w.f = nil
	w.finalErr = errors.Join(errs...)
}

func (w *Writer) ioError(op string, err error) {
	w.c.ExportIOErrors.Add(1)
	w.log.log(time.Now(), "events file %q: %s: %v", w.opts.Path, op, err)
}

// logLimiter passes at most one message per period to logf and reports how
// many it suppressed in between. Only the writer goroutine uses it.
type logLimiter struct {
	logf func(format string, args ...any)
	lim  logthrottle.Limiter
}

func (l *logLimiter) log(now time.Time, format string, args ...any) {
	if l.logf == nil || !l.lim.AllowAt(now) {
		return
	}
	if n := l.lim.TakeSuppressed(); n > 0 {
		format += " (%d similar errors suppressed)"
		args = append(args, n)
	}
	l.logf(format, args...)
}
