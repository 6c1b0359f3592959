package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/events"
	"github.com/varta-go/varta/cmd/varta-watch/internal/listener"
	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/cmd/varta-watch/internal/tracker"
	"github.com/varta-go/varta/pkg/vlp"
	"github.com/varta-go/varta/pkg/vlp/secure"
)

// Emitter receives events-file lines. It must never block.
type Emitter interface {
	Emit(events.Event)
}

// ErrStrictNamespace is returned (wrapped) when --strict-namespace-check
// sees a sender from another pid namespace: the daemon exits 1.
var ErrStrictNamespace = errors.New("strict namespace check")

// Options configure the pipeline.
type Options struct {
	// SelfUID is the observer's effective uid; its senders are always
	// allowed.
	SelfUID   uint32
	AllowUIDs []uint32
	AllowGIDs []uint32
	// GlobalRate (frames per second) and GlobalBurst configure the global
	// token bucket; a zero rate turns it off.
	GlobalRate  float64
	GlobalBurst float64
	// PidMax bounds claimed pids on unauthenticated transports (pids are
	// < pid_max); 0 disables the check.
	PidMax uint32
	// StrictNamespace makes the first cross-namespace sender fatal.
	StrictNamespace bool
	// KernelCredentials is true where Unix datagrams carry the sender's
	// credentials (Linux); elsewhere Unix beats are SocketModeOnly.
	KernelCredentials bool
	// UDPOrigin is the origin of frames received over UDP
	// (NetworkUnverified, or OperatorAttestedTransport with
	// --udp-accept-recovery).
	UDPOrigin vlp.Origin
	// Opener opens secure UDP frames (SecureBatch); Replay bounds the
	// replay guard behind it. Nil when UDP is plain or off.
	Opener *secure.Opener
	Replay secure.ReplayConfig
	// OnNewStream, if set, is told of every new kernel-attested stream
	// (a new slot, or a recycled pid) with the sender's uid and the
	// stream's epoch, so that its identity can be resolved off the receive
	// path (tracker.SetIdent). It runs under the tracker lock and must
	// not block.
	OnNewStream func(pid, uid, epoch uint32)
	// LateBound (ns) is the queueing delay beyond which a batch shows that
	// the socket was not read for a while (a stopped or starved daemon):
	// beats may have been lost to a full queue meanwhile, and OnLate is
	// called. 0 disables the check.
	LateBound int64
}

// Pipeline processes received datagrams. Each transport has one batch
// method (UnixBatch, UDPBatch, SecureBatch), called by that transport's
// receiving goroutine only; different transports run concurrently.
//
// Locking: a datagram is checked (size, credentials, allow-lists, global
// bucket, AEAD, decode, identity, pid_max, replay) without the tracker
// lock; the global bucket and the replay guard have locks of their own,
// taken once per batch and once per secure frame. The tracker lock is
// taken once per batch (tracker.Update) to hand the surviving frames to
// the tracker and emit their events; the /proc reads some frames need
// happen between two such sections, never inside one.
type Pipeline struct {
	opts   Options
	tr     *tracker.Tracker
	c      *stats.Counters
	emit   Emitter
	wake   func()
	bucket bucket
	guard  *secure.ReplayGuard
	fatal  atomic.Bool
	lines  lineLimiter
	ux     batch // Unix receiving goroutine
	udp    batch // UDP receiving goroutine
	// Charged senders (senders.go), each owned by its transport's
	// receiving goroutine.
	uxSenders  *senderTable[uint32]
	udpSenders *senderTable[netip.AddrPort]
	// OnFatal receives the error that must stop the daemon (at most once).
	OnFatal func(error)
	// OnLate is called (from the receiving goroutine, no lock held) when a
	// batch read at now holds a datagram that waited delay ns in the
	// queue, more than Options.LateBound; once per blind spell per
	// transport.
	OnLate func(now, delay int64)
}

type nopEmitter struct{}

func (nopEmitter) Emit(events.Event) {}

// New builds a pipeline over tr. emit may be nil (no events file); wake is
// called when the tracker's live list goes from empty to non-empty, so the
// stall timer can be armed.
func New(opts Options, tr *tracker.Tracker, c *stats.Counters, emit Emitter, wake func()) *Pipeline {
	if emit == nil {
		emit = nopEmitter{}
	}
	if wake == nil {
		wake = func() {}
	}
	p := &Pipeline{opts: opts, tr: tr, c: c, emit: emit, wake: wake}
	p.bucket = bucket{rate: opts.GlobalRate, burst: opts.GlobalBurst, tokens: opts.GlobalBurst}
	if opts.Opener != nil {
		p.guard = secure.NewReplayGuard(opts.Replay)
	}
	evicted := func() { c.SenderThrottleEvictions.Add(1) }
	p.uxSenders = newSenderTable[uint32](evicted)
	p.udpSenders = newSenderTable[netip.AddrPort](evicted)
	unixOrigin := vlp.OriginSocketModeOnly
	if opts.KernelCredentials {
		unixOrigin = vlp.OriginKernelAttested
	}
	p.ux.init(p, unixOrigin, true)
	p.udp.init(p, opts.UDPOrigin, false)
	return p
}

// state is where a datagram of the current batch stands.
type state uint8

const (
	dropped   state = iota // refused or dropped before the tracker (counted)
	candidate              // passed the transport's checks, not yet charged
	ready                  // decoded and checked: goes to the tracker
	gasp                   // the global bucket was empty and it looks terminal
)

// batch is one transport's per-batch scratch space, reused for every
// batch (so a batch allocates nothing). It belongs to the goroutine that
// receives on that transport.
type batch struct {
	p        *Pipeline
	origin   vlp.Origin
	unix     bool
	b        *listener.Batch
	n        int
	now      int64 // stall clock when the batch was read
	wall     int64 // wall clock (Unix ns) when the batch was read
	drained  int64 // stall clock of the last read that emptied the socket, -1 before
	lateAt   int64 // stall clock of the last OnLate report
	st       [listener.BatchSize]state
	frames   [listener.BatchSize]vlp.Frame
	deferred [listener.BatchSize]uint8 // indices waiting for an identity read
	ids      [listener.BatchSize]tracker.Identity
	nd       int
	plain    [vlp.FrameSize]byte
	track    func(*tracker.Tx) // b.trackLocked, bound once
	retry    func(*tracker.Tx) // b.retryLocked, bound once
}

func (b *batch) init(p *Pipeline, origin vlp.Origin, unix bool) {
	b.p, b.origin, b.unix = p, origin, unix
	b.drained = -1
	b.lateAt = math.MinInt64
	b.track, b.retry = b.trackLocked, b.retryLocked
}

// begin starts a batch of n datagrams read at now (stall clock) and wall
// (Unix ns).
func (b *batch) begin(lb *listener.Batch, n int, now, wall int64) {
	b.b, b.n, b.now, b.wall = lb, n, now, wall
	b.p.c.Datagrams.Add(uint64(n))
}

// end reports a late read and records whether the read emptied the
// socket: a datagram of a later batch cannot have arrived before this one
// was read.
func (b *batch) end() {
	p := b.p
	if p.opts.LateBound > 0 && p.OnLate != nil && b.wall != 0 && b.n > 0 {
		// The queue is FIFO: the first datagram waited longest.
		if a := b.b.D[0].Arrival; a != 0 {
			arrived := b.now - (b.wall - a)
			if delay := b.now - arrived; delay > p.opts.LateBound && arrived > b.lateAt {
				b.lateAt = b.now
				p.OnLate(b.now, delay)
			}
		}
	}
	if b.n < listener.BatchSize {
		b.drained = b.now
	}
}

// beatTime is when datagram i arrived, on the stall clock (arrivalTime),
// counting a guarded conversion.
func (b *batch) beatTime(i int) int64 {
	t, clamped := arrivalTime(b.b.D[i].Arrival, b.now, b.wall, b.drained)
	if clamped {
		b.p.c.BeatTimeClamped.Add(1)
	}
	return t
}

// ClampSlack is how far before the last read that emptied a socket a
// datagram read later may be stamped before its arrival time is taken as
// wrong: the time of that read is taken after the receive call returned,
// so a datagram may have arrived a little earlier.
const ClampSlack = int64(time.Millisecond)

// arrivalTime moves a datagram's kernel arrival time (SO_TIMESTAMPNS,
// wall clock, arrival ns) onto the stall clock, for a datagram read at
// now (stall clock) and wall (wall clock, sampled together with now):
// the offset between the two clocks at the read, now − wall, is added to
// the arrival. Reads are coalesced (--drain-interval-ms) or late (a busy
// or paused daemon), so a wall-clock step between arrival and read would
// move the result; it is guarded. It is never after the read (now), and
// never more than ClampSlack before drained, the last read that found the
// socket empty (the datagram was not queued then); a result outside is
// clamped to that bound and reported (clamped). Without an arrival time,
// or before the socket was first drained (drained < 0), it is the read
// time, not counted as clamped.
func arrivalTime(arrival, now, wall, drained int64) (t int64, clamped bool) {
	if arrival == 0 || drained < 0 || wall == 0 {
		return now, false
	}
	t = arrival + (now - wall)
	switch {
	case t > now:
		return now, true
	case t < drained-ClampSlack:
		return min(drained, now), true
	}
	return t, false
}

// throttled reports (and counts) a datagram whose sender spent its
// allowance of refused datagrams.
func (b *batch) throttled(i int) bool {
	d, p := &b.b.D[i], b.p
	if b.unix {
		if !p.opts.KernelCredentials || !d.HasCreds || d.CtrlTruncated || !p.uxSenders.throttled(uint32(d.Pid), b.now) {
			return false
		}
		p.c.SenderThrottled[stats.TransportUnix].Add(1)
		return true
	}
	if !d.From.IsValid() || !p.udpSenders.throttled(d.From, b.now) {
		return false
	}
	p.c.SenderThrottled[stats.TransportUDP].Add(1)
	return true
}

// refused charges a refused datagram i to its sender: the sending
// process (kernel pid) on the Unix socket, whatever the refusal.
func (b *batch) refused(i int) {
	d, p := &b.b.D[i], b.p
	if b.unix && p.opts.KernelCredentials && d.HasCreds && !d.CtrlTruncated {
		p.uxSenders.charge(uint32(d.Pid), b.now)
	}
}

// garbage charges datagram i to its sender when it is garbage: the wrong
// size, a failed decryption or a failed decode. On UDP only garbage is
// charged to the source address: one source may carry many agents (a
// relay, a load generator, several agents behind one socket), and a
// refusal about one claimed pid (out of order, pid_max, origin conflict,
// replay) must not silence the others. On the Unix socket every refusal
// is charged (refused).
func (b *batch) garbage(i int) {
	d, p := &b.b.D[i], b.p
	if b.unix {
		b.refused(i)
		return
	}
	if d.From.IsValid() {
		p.udpSenders.charge(d.From, b.now)
	}
}

// UnixBatch processes n datagrams received on the Unix socket at now
// (stall clock) and wall (Unix ns; 0 when unknown).
func (p *Pipeline) UnixBatch(lb *listener.Batch, n int, now, wall int64) {
	b := &p.ux
	b.begin(lb, n, now, wall)
	cand := 0
	for i := 0; i < n; i++ {
		b.st[i] = dropped
		d := &lb.D[i]
		if b.throttled(i) {
			continue
		}
		if d.Len != vlp.FrameSize {
			p.c.TruncatedDatagrams.Add(1)
			b.garbage(i)
			continue
		}
		if p.opts.KernelCredentials {
			if d.CtrlTruncated {
				p.c.CtrlTruncated.Add(1)
				p.anomaly(events.Event{Kind: events.KindCtrunc, Ns: uint64(now), Text: "control message truncated (MSG_CTRUNC)"})
				continue
			}
			if !d.HasCreds {
				p.c.IOErrors.Add(1)
				p.anomaly(events.Event{Kind: events.KindIO, Ns: uint64(now), Text: "datagram without SCM_CREDENTIALS"})
				continue
			}
			if !p.uidAllowed(d.Uid, d.Gid) {
				p.c.FrameUIDRefused.Add(1)
				b.refused(i)
				continue
			}
		}
		b.st[i] = candidate
		cand++
	}
	b.charge(cand, true)
	b.run()
	b.end()
}

// UDPBatch processes n datagrams received on the plain UDP socket at now
// (stall clock) and wall (Unix ns). Their pids are claims: only the
// pid_max check applies.
func (p *Pipeline) UDPBatch(lb *listener.Batch, n int, now, wall int64) {
	b := &p.udp
	b.begin(lb, n, now, wall)
	cand := 0
	for i := 0; i < n; i++ {
		b.st[i] = dropped
		if b.throttled(i) {
			continue
		}
		if lb.D[i].Len != vlp.FrameSize {
			p.c.TruncatedDatagrams.Add(1)
			b.garbage(i)
			continue
		}
		b.st[i] = candidate
		cand++
	}
	b.charge(cand, true)
	b.run()
	b.end()
}

// SecureBatch processes n datagrams received on the secure UDP socket at
// now (stall clock) and wall (Unix ns; the replay guard's clock): the
// sender's allowance, length dispatch, the AEAD, decode, pid_max, then the
// global bucket (only frames that authenticated are charged to it) and
// the replay guard, then the tracker.
func (p *Pipeline) SecureBatch(lb *listener.Batch, n int, now, wall int64) {
	b := &p.udp
	b.begin(lb, n, now, wall)
	wt := time.Unix(0, wall)
	for i := 0; i < n; i++ {
		b.st[i] = dropped
		if b.throttled(i) {
			continue
		}
		if l := lb.D[i].Len; l != secure.SharedFrameSize && l != secure.MasterFrameSize {
			p.c.TruncatedDatagrams.Add(1)
			b.garbage(i)
			continue
		}
		info, err := p.opts.Opener.Open(&b.plain, lb.D[i].Data)
		p.c.SecureAEADAttempts.Add(uint64(info.Attempts))
		if err != nil {
			p.c.FrameDecryptFailures.Add(1)
			b.garbage(i)
			continue
		}
		f := &b.frames[i]
		if !p.decode(b.plain[:], now, f) {
			b.garbage(i)
			continue
		}
		if !p.pidPlausible(f.Pid) {
			continue
		}
		if p.bucket.take(now, 1) == 0 {
			p.c.RateLimited[stats.RateLimitGlobal].Add(1)
			continue
		}
		switch p.guard.Check(wt, info.IV, f) {
		case secure.Replay:
			p.c.SecureReplayRefused.Add(1)
			continue
		case secure.TableFull:
			p.c.SenderStateFull.Add(1)
			continue
		}
		b.st[i] = ready
	}
	b.run()
	b.end()
}

// ReceiveError counts a receive error on a listener and writes an io line
// (rate-limited like the other lines about refused traffic).
func (p *Pipeline) ReceiveError(t stats.Transport, err error, now int64) {
	p.c.IOErrors.Add(1)
	p.anomaly(events.Event{Kind: events.KindIO, Ns: uint64(now), Text: t.Label() + ": " + err.Error()})
}

// ReplayGuard returns the secure transport's replay guard (safe for
// concurrent use), or nil without one: its marks are saved and restored
// across restarts.
func (p *Pipeline) ReplayGuard() *secure.ReplayGuard { return p.guard }

// ExpireReplay drops idle replay-guard entries (once per housekeeping
// tick); a no-op without a secure transport.
func (p *Pipeline) ExpireReplay(now time.Time) {
	if p.guard != nil {
		p.guard.Expire(now)
	}
}

// charge takes one global-bucket token per candidate, in order. A
// candidate that gets one is decoded and checked; one that does not is
// dropped and counted, except that a frame that looks like a dying gasp
// is kept for the tracker to judge (gaspOK).
//
// A dying gasp is never rate-limited: when the bucket is empty, a frame
// whose bytes say "terminal" from a pid whose last accepted frame was a
// regular beat passes anyway (the tracker lets only the first one through
// its own per-pid limit; a forged look-alike still has to pass decode,
// the CRC and the identity checks behind this).
func (b *batch) charge(cand int, gaspOK bool) {
	p := b.p
	granted := p.bucket.take(b.now, cand)
	for i := 0; i < b.n; i++ {
		if b.st[i] != candidate {
			continue
		}
		if granted > 0 {
			granted--
			b.st[i] = dropped
			if b.throttled(i) { // spent its allowance earlier in this batch
				continue
			}
			if b.check(i) {
				b.st[i] = ready
			}
			continue
		}
		if gaspOK && looksTerminal(b.b.D[i].Data) {
			b.st[i] = gasp
			continue
		}
		b.st[i] = dropped
		p.c.RateLimited[stats.RateLimitGlobal].Add(1)
	}
}

// check decodes plaintext datagram i into b.frames[i] and applies the
// transport's sender check: frame pid = kernel pid on kernel-attested
// Unix datagrams, pid_max on plain UDP.
func (b *batch) check(i int) bool {
	p, d, f := b.p, &b.b.D[i], &b.frames[i]
	if !p.decode(d.Data, b.now, f) {
		b.garbage(i)
		return false
	}
	if !b.unix {
		return p.pidPlausible(f.Pid)
	}
	if b.origin == vlp.OriginKernelAttested && int64(f.Pid) != int64(d.Pid) {
		p.c.FrameAuthFailures.Add(1)
		p.anomaly(events.Event{Kind: events.KindMismatch, Ns: uint64(b.now), Pid: f.Pid, Text: events.MismatchAuthFailure})
		b.refused(i)
		return false
	}
	return true
}

// run hands the batch's ready frames to the tracker under one lock, then
// reads the identities some of them need without the lock and finishes
// those under a second one.
func (b *batch) run() {
	b.p.tr.Update(b.track)
	if b.nd == 0 {
		return
	}
	for k := 0; k < b.nd; k++ {
		pid := b.frames[b.deferred[k]].Pid
		j := 0
		for j < k && b.frames[b.deferred[j]].Pid != pid {
			j++
		}
		if j < k {
			b.ids[k] = b.ids[j]
			continue
		}
		b.ids[k] = b.p.tr.Identify(pid)
	}
	b.p.tr.Update(b.retry)
}

// trackLocked runs under the tracker lock (tracker.Update).
func (b *batch) trackLocked(tx *tracker.Tx) {
	p := b.p
	b.nd = 0
	for i := 0; i < b.n; i++ {
		switch b.st[i] {
		case ready:
		case gasp:
			data := b.b.D[i].Data
			if !tx.GaspPending(binary.LittleEndian.Uint32(data[4:8])) {
				p.c.RateLimited[stats.RateLimitGlobal].Add(1)
				continue
			}
			if !b.check(i) {
				continue
			}
		default:
			continue
		}
		f := &b.frames[i]
		if b.nd > 0 && b.isDeferred(f.Pid) {
			b.deferred[b.nd] = uint8(i) // keep this pid's frames in order
			b.nd++
			continue
		}
		r := tx.Observe(f, b.origin, b.beatTime(i))
		if r.Verdict == tracker.NeedIdentity {
			b.deferred[b.nd] = uint8(i)
			b.nd++
			continue
		}
		b.verdict(i, r)
	}
}

// retryLocked finishes the frames that waited for an identity read.
func (b *batch) retryLocked(tx *tracker.Tx) {
	for k := 0; k < b.nd; k++ {
		i := int(b.deferred[k])
		b.verdict(i, tx.ObserveIdentified(&b.frames[i], b.origin, b.beatTime(i), b.ids[k]))
	}
	b.nd = 0
}

// uid is datagram i's sender uid (Unix datagrams with credentials), else 0.
func (b *batch) uid(i int) uint32 {
	if !b.unix {
		return 0
	}
	return b.b.D[i].Uid
}

func (b *batch) isDeferred(pid uint32) bool {
	for k := 0; k < b.nd; k++ {
		if b.frames[b.deferred[k]].Pid == pid {
			return true
		}
	}
	return false
}

// pidPlausible applies the pid_max check to a claimed pid, counting a
// refusal.
func (p *Pipeline) pidPlausible(pid uint32) bool {
	if p.opts.PidMax != 0 && pid >= p.opts.PidMax {
		p.c.FrameRejectedPidAboveMax.Add(1)
		return false
	}
	return true
}

// looksTerminal reports whether a 32-byte datagram claims to be a terminal
// frame (Critical status and the terminal nonce), without validating it.
func looksTerminal(b []byte) bool {
	return len(b) == vlp.FrameSize && b[3] == byte(vlp.StatusCritical) &&
		binary.LittleEndian.Uint64(b[16:24]) == vlp.NonceTerminal
}

// bucket is the global token bucket, shared by every transport; it has
// its own lock.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   int64
}

// take refills the bucket to now and takes up to want tokens, returning
// how many it took. With the bucket off every request is granted.
func (k *bucket) take(now int64, want int) int {
	if k.rate <= 0 || want == 0 {
		return want
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.last == 0 || now < k.last {
		k.last = now
	}
	k.tokens += float64(now-k.last) * k.rate / 1e9
	k.last = now
	if k.tokens > k.burst {
		k.tokens = k.burst
	}
	got := want
	if avail := int(k.tokens); avail < got {
		got = max(avail, 0)
	}
	k.tokens -= float64(got)
	return got
}

func (p *Pipeline) decode(data []byte, now int64, f *vlp.Frame) bool {
	err := vlp.Decode(data, f)
	if err == nil {
		return true
	}
	var de vlp.DecodeError
	if errors.As(err, &de) {
		p.c.DecodeErrors[de.Kind()].Add(1)
		p.anomaly(events.Event{Kind: events.KindDecode, Ns: uint64(now), Text: de.Error()})
		return false
	}
	p.c.TruncatedDatagrams.Add(1)
	return false
}

// verdict turns the tracker's verdict on frame i into events, and charges
// a refusal to the sender. It runs under the tracker lock.
func (b *batch) verdict(i int, r tracker.Result) {
	p, f := b.p, &b.frames[i]
	switch r.Verdict {
	case tracker.Accepted:
		if r.Evicted != 0 {
			p.emit.Emit(events.Event{Kind: events.KindEviction, Ns: uint64(r.Seen), Pid: r.Evicted})
		}
		if r.First && b.origin == vlp.OriginKernelAttested && p.opts.OnNewStream != nil {
			p.opts.OnNewStream(f.Pid, b.uid(i), r.Epoch)
		}
		p.emit.Emit(events.Event{Kind: events.KindBeat, Ns: uint64(r.Seen), Pid: f.Pid, Nonce: f.Nonce, Status: f.Status, Payload: f.Payload, Ident: r.Ident})
		if r.WasEmpty {
			p.wake()
		}
		return
	case tracker.DroppedOriginConflict:
		p.anomaly(events.Event{Kind: events.KindMismatch, Ns: uint64(b.now), Pid: f.Pid, Text: events.MismatchOriginConflict})
	case tracker.DroppedNamespace:
		p.anomaly(events.Event{Kind: events.KindMismatch, Ns: uint64(b.now), Pid: f.Pid, Text: events.MismatchNamespaceConflict})
		if p.opts.StrictNamespace && p.OnFatal != nil && p.fatal.CompareAndSwap(false, true) {
			p.OnFatal(fmt.Errorf("%w: pid %d is in another pid namespace", ErrStrictNamespace, f.Pid))
		}
	case tracker.DroppedCapacity:
		return // not the sender's doing
	}
	b.refused(i)
}

func (p *Pipeline) uidAllowed(uid, gid uint32) bool {
	return uid == p.opts.SelfUID || slices.Contains(p.opts.AllowUIDs, uid) || slices.Contains(p.opts.AllowGIDs, gid)
}

// DefaultGlobalRate returns the default global beat rate for a tracker
// capacity: 5000/s or 2 beats/s per slot, whichever is larger.
func DefaultGlobalRate(capacity int) float64 {
	r := float64(2 * capacity)
	if r < 5000 {
		r = 5000
	}
	return r
}
