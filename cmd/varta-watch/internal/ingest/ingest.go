package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/varta-go/varta/cmd/varta-watch/internal/export"
	"github.com/varta-go/varta/cmd/varta-watch/internal/listener"
	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/cmd/varta-watch/internal/tracker"
	"github.com/varta-go/varta/pkg/vlp"
)

// Emitter receives events-file lines. It must never block.
type Emitter interface {
	Emit(export.Event)
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
}

// Pipeline processes datagrams. Methods must be called with the tracker
// lock held unless they say otherwise.
type Pipeline struct {
	opts   Options
	tr     *tracker.Tracker
	c      *stats.Counters
	emit   Emitter
	wake   func()
	tokens float64
	last   int64
	fatal  bool
	frame  vlp.Frame
	// OnFatal receives the error that must stop the daemon (at most once).
	OnFatal func(error)
}

type nopEmitter struct{}

func (nopEmitter) Emit(export.Event) {}

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
	return &Pipeline{opts: opts, tr: tr, c: c, emit: emit, wake: wake, tokens: opts.GlobalBurst}
}

// UnixBatch processes n datagrams received on the Unix socket at now. It
// takes the tracker lock once for the whole batch.
func (p *Pipeline) UnixBatch(b *listener.Batch, n int, now int64) {
	p.tr.Lock()
	for i := 0; i < n; i++ {
		p.unix(&b.D[i], now)
	}
	p.tr.Unlock()
}

func (p *Pipeline) unix(d *listener.Datagram, now int64) {
	p.c.Datagrams.Add(1)
	if d.Len != vlp.FrameSize {
		p.c.TruncatedDatagrams.Add(1)
		return
	}
	origin := vlp.OriginSocketModeOnly
	if p.opts.KernelCredentials {
		if d.CtrlTruncated {
			p.c.CtrlTruncated.Add(1)
			p.emit.Emit(export.Event{Kind: export.KindCtrunc, Ns: uint64(now), Text: "control message truncated (MSG_CTRUNC)"})
			return
		}
		if !d.HasCreds {
			p.c.IOErrors.Add(1)
			p.emit.Emit(export.Event{Kind: export.KindIO, Ns: uint64(now), Text: "datagram without SCM_CREDENTIALS"})
			return
		}
		if !p.uidAllowed(d.Uid, d.Gid) {
			p.c.FrameUIDRefused.Add(1)
			return
		}
		origin = vlp.OriginKernelAttested
	}
	if !p.admit(d.Data, now) {
		return
	}
	f := &p.frame
	if !p.decode(d.Data, now, f) {
		return
	}
	if origin == vlp.OriginKernelAttested && int64(f.Pid) != int64(d.Pid) {
		p.c.FrameAuthFailures.Add(1)
		p.emit.Emit(export.Event{Kind: export.KindMismatch, Ns: uint64(now), Pid: f.Pid, Text: export.MismatchAuthFailure})
		return
	}
	p.Track(f, origin, now)
}

// Plain processes one datagram from an unauthenticated transport (plain
// UDP) carrying a claimed pid.
func (p *Pipeline) Plain(data []byte, origin vlp.Origin, now int64) {
	p.c.Datagrams.Add(1)
	if len(data) != vlp.FrameSize {
		p.c.TruncatedDatagrams.Add(1)
		return
	}
	if !p.admit(data, now) {
		return
	}
	f := &p.frame
	if !p.decode(data, now, f) {
		return
	}
	if !p.PidPlausible(f.Pid) {
		return
	}
	p.Track(f, origin, now)
}

// PidPlausible applies the pid_max check to a claimed pid, counting a
// refusal.
func (p *Pipeline) PidPlausible(pid uint32) bool {
	if p.opts.PidMax != 0 && pid >= p.opts.PidMax {
		p.c.FrameRejectedPidAboveMax.Add(1)
		return false
	}
	return true
}

// TakeToken charges one frame to the global bucket, counting a drop when
// the bucket is empty.
func (p *Pipeline) TakeToken(now int64) bool {
	if p.bucket(now) {
		return true
	}
	p.c.RateLimited[stats.RateLimitGlobal].Add(1)
	return false
}

// admit charges a plaintext frame to the global bucket. A dying gasp is
// never rate-limited: when the bucket is empty, a frame whose bytes say
// "terminal" from a pid whose last accepted frame was a regular beat
// passes anyway (the tracker lets only the first one through its own
// per-pid limit; a forged look-alike still has to pass decode, the CRC and
// the identity checks behind this).
func (p *Pipeline) admit(data []byte, now int64) bool {
	if p.bucket(now) {
		return true
	}
	if looksTerminal(data) && p.tr.GaspPending(binary.LittleEndian.Uint32(data[4:8])) {
		return true
	}
	p.c.RateLimited[stats.RateLimitGlobal].Add(1)
	return false
}

// looksTerminal reports whether a 32-byte datagram claims to be a terminal
// frame (Critical status and the terminal nonce), without validating it.
func looksTerminal(b []byte) bool {
	return len(b) == vlp.FrameSize && b[3] == byte(vlp.StatusCritical) &&
		binary.LittleEndian.Uint64(b[16:24]) == vlp.NonceTerminal
}

// bucket takes a token from the global bucket.
func (p *Pipeline) bucket(now int64) bool {
	if p.opts.GlobalRate <= 0 {
		return true
	}
	if p.last == 0 || now < p.last {
		p.last = now
	}
	p.tokens += float64(now-p.last) * p.opts.GlobalRate / 1e9
	p.last = now
	if p.tokens > p.opts.GlobalBurst {
		p.tokens = p.opts.GlobalBurst
	}
	if p.tokens < 1 {
		return false
	}
	p.tokens--
	return true
}

// Decode decodes a 32-byte frame into f, counting and emitting a decode
// error.
func (p *Pipeline) Decode(data []byte, now int64, f *vlp.Frame) bool { return p.decode(data, now, f) }

func (p *Pipeline) decode(data []byte, now int64, f *vlp.Frame) bool {
	err := vlp.Decode(data, f)
	if err == nil {
		return true
	}
	var de vlp.DecodeError
	if errors.As(err, &de) {
		p.c.DecodeErrors[de.Kind()].Add(1)
		p.emit.Emit(export.Event{Kind: export.KindDecode, Ns: uint64(now), Text: de.Error()})
		return false
	}
	p.c.TruncatedDatagrams.Add(1)
	return false
}

// Track hands a decoded, authenticated frame to the tracker and turns the
// verdict into events.
func (p *Pipeline) Track(f *vlp.Frame, origin vlp.Origin, now int64) tracker.Verdict {
	r := p.tr.Observe(f, origin, now)
	switch r.Verdict {
	case tracker.Accepted:
		if r.Evicted != 0 {
			p.emit.Emit(export.Event{Kind: export.KindEviction, Ns: uint64(now), Pid: r.Evicted})
		}
		p.emit.Emit(export.Event{Kind: export.KindBeat, Ns: uint64(now), Pid: f.Pid, Nonce: f.Nonce, Status: f.Status, Payload: f.Payload})
		if r.WasEmpty {
			p.wake()
		}
	case tracker.DroppedOriginConflict:
		p.emit.Emit(export.Event{Kind: export.KindMismatch, Ns: uint64(now), Pid: f.Pid, Text: export.MismatchOriginConflict})
	case tracker.DroppedNamespace:
		p.emit.Emit(export.Event{Kind: export.KindMismatch, Ns: uint64(now), Pid: f.Pid, Text: export.MismatchNamespaceConflict})
		if p.opts.StrictNamespace && !p.fatal && p.OnFatal != nil {
			p.fatal = true
			p.OnFatal(fmt.Errorf("%w: pid %d is in another pid namespace", ErrStrictNamespace, f.Pid))
		}
	}
	return r.Verdict
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
