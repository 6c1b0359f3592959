package tracker

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/varta-go/varta/cmd/varta-watch/internal/identity"
	"github.com/varta-go/varta/cmd/varta-watch/internal/procfs"
	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/pkg/vlp"
)

// Policy selects which silent slots may be evicted when the table is full.
type Policy uint8

// Eviction policies.
const (
	// Strict evicts only slots silent for more than 10 × threshold whose
	// stall was already surfaced.
	Strict Policy = iota
	// Balanced evicts any slot silent for more than 10 × threshold.
	Balanced
)

// ParsePolicy parses --tracker-eviction-policy.
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "strict":
		return Strict, nil
	case "balanced":
		return Balanced, nil
	}
	return 0, fmt.Errorf("tracker eviction policy %q: must be strict or balanced", s)
}

// Capacity bounds.
const (
	MinCapacity = 1
	MaxCapacity = 1 << 20
)

// NonceWrapWindow: a regular nonce ≤ NonceWrapWindow after a last nonce ≥
// 2^64 − NonceWrapWindow is a wrap, not a regression.
const NonceWrapWindow = 1 << 20

// Resolver reads a process's identity (pid namespace, start time).
// procfs.Default implements it on Linux.
type Resolver interface {
	Identity(pid uint32) (procfs.Identity, error)
}

// Options configure a Tracker.
type Options struct {
	Capacity  int
	Threshold int64 // ns, > 0
	Policy    Policy
	// MaxBeatRate is the per-pid limit of accepted frames per second; 0 = off.
	MaxBeatRate int
	// SelfNS is the observer's pid-namespace inode; 0 disables the check.
	SelfNS uint64
	// AllowCrossNamespace tracks senders from other pid namespaces.
	AllowCrossNamespace bool
	// Resolver pins kernel-attested senders; nil means identities cannot be
	// read (non-Linux), and kernel-attested beats are tracked as
	// SocketModeOnly.
	Resolver Resolver
	// Thresholds are further silence thresholds (ns, > 0) besides
	// Threshold, at most MaxThresholds−1: an agent is given one with
	// SetIdent (by its policy rule); until then it has Threshold.
	Thresholds []int64
	// PidLimit, when between 1 and MaxDenseIndex, promises that every pid
	// handed to Observe is below it (the observer passes pid_max: kernel
	// pids are, and claimed UDP pids are checked against it first). The
	// pid → slot index is then a plain array instead of a hash map: one
	// memory access per beat. Pids at or above it fall back to the map.
	PidLimit uint32
}

// MaxThresholds bounds the distinct thresholds: the tracker keeps one
// deadline list per threshold, and the next stall is the earliest of the
// list heads.
const MaxThresholds = 16

// MaxDenseIndex bounds the array index (4 bytes per possible pid: 16 MiB at
// Linux's largest pid_max, 128 KiB at the common default of 32768).
const MaxDenseIndex = 1 << 22

// Verdict is what the tracker decided about one frame.
type Verdict uint8

// Verdicts.
const (
	Accepted Verdict = iota
	DroppedOutOfOrder
	DroppedOriginConflict
	DroppedCapacity
	DroppedRateLimited
	DroppedNamespace
	// NeedIdentity: deciding the frame needs the sender's process
	// identity (a /proc read), which the tracker never does with its lock
	// held. Nothing was changed or counted; the caller reads the identity
	// with Identify outside the lock and calls Tx.ObserveIdentified.
	NeedIdentity
)

func (v Verdict) String() string {
	switch v {
	case Accepted:
		return "accepted"
	case DroppedOutOfOrder:
		return "out_of_order"
	case DroppedOriginConflict:
		return "origin_conflict"
	case DroppedCapacity:
		return "capacity_exceeded"
	case DroppedRateLimited:
		return "rate_limited"
	case DroppedNamespace:
		return "namespace_conflict"
	case NeedIdentity:
		return "need_identity"
	}
	return "unknown"
}

// Result is the outcome of Observe.
type Result struct {
	Verdict Verdict
	// Evicted is the pid whose slot was taken for this frame, or 0.
	Evicted uint32
	// First is true when this frame opened a new slot.
	First bool
	// WasEmpty is true when the live list was empty before this frame: the
	// caller must wake the stall timer.
	WasEmpty bool
	// Ident is the slot's identity (nil until SetIdent) and Epoch its
	// stream number, which SetIdent must name (Accepted only).
	Ident *identity.Info
	Epoch uint32
	// Seen is the time recorded as the agent's last beat (accepted frames
	// only): the time given to Observe, raised if needed to the latest
	// beat already recorded, which keeps the deadline list in order.
	Seen int64
}

// Stall describes a surfaced stall.
type Stall struct {
	Pid            uint32
	Nonce          uint64 // last accepted regular nonce
	Generation     uint64
	Origin         vlp.Origin
	CrossNamespace bool
	Deadline       int64          // when the stall became due (stall clock ns)
	Surfaced       int64          // when it was surfaced
	Ident          *identity.Info // nil when not (yet) known
	Threshold      int64          // the threshold it was judged by (ns)
}

const (
	listNone uint8 = iota
	listLive
	listStalled
)

const nilIdx = int32(-1)

// slot is one tracked agent. Fields marked "atomic" are read lock-free by
// the metrics exporter; everything else is guarded by Tracker.mu.
type slot struct {
	pid     atomic.Uint32                 // atomic; 0 = free
	status  atomic.Uint32                 // atomic; vlp.Status, Stall while stalled
	payload atomic.Uint32                 // atomic
	beats   atomic.Uint64                 // atomic
	stalls  atomic.Uint64                 // atomic
	ident   atomic.Pointer[identity.Info] // atomic; nil until SetIdent

	lastNonce      uint64
	lastTerminalTs uint64
	lastSeen       int64
	nsInode        uint64
	generation     uint64
	rateStart      int64
	rateCount      uint32
	prev, next     int32
	origin         vlp.Origin
	list           uint8
	hasNonce       bool
	hasTerminal    bool
	gaspSent       bool // a terminal frame was accepted since the last regular one
	crossNS        bool
	adopted        bool   // re-created from a state file; no frame accepted since
	th             uint8  // index into Tracker.ths: the slot's threshold and live list
	epoch          uint32 // incremented at every new stream
}

// Tracker holds the per-pid slots. Every exported method of Tracker takes
// the lock itself (EachAgent, Tracked and Capacity need none); the only way
// to work under the lock across several calls is Update, whose callback
// receives a *Tx. See the package documentation for the lock order.
type Tracker struct {
	mu sync.Mutex
	tx Tx
	// scanMu serialises Due and Sweep, which release mu while they read
	// /proc and keep their work list in checks.
	scanMu sync.Mutex
	checks []check
	opts   Options
	c      *stats.Counters
	slots  []slot
	index  map[uint32]int32
	dense  []int32 // pid → slot index + 1 (0 = none) for pids < len(dense)
	free   []int32
	// live: slots not stalled, one list per threshold, each ordered by
	// lastSeen (head = oldest); nlive counts them all.
	liveHead, liveTail [MaxThresholds]int32
	ths                [MaxThresholds]int64
	nths               int
	nlive              int
	// stalled: slots whose stall was surfaced, in surfacing order.
	stHead, stTail int32
	tracked        atomic.Int64
	stalled        atomic.Int64 // length of the stalled list
	graceUntil     int64
	// sweepNext is the stalled slot the next Sweep starts from (nilIdx:
	// the head of the stalled list).
	sweepNext int32
}

// New allocates a tracker with all of its slots up front, so steady-state
// operation never allocates.
func New(opts Options, c *stats.Counters) (*Tracker, error) {
	if opts.Capacity < MinCapacity || opts.Capacity > MaxCapacity {
		return nil, fmt.Errorf("tracker capacity %d: must be between %d and %d", opts.Capacity, MinCapacity, MaxCapacity)
	}
	if opts.Threshold <= 0 {
		return nil, errors.New("tracker threshold must be positive")
	}
	if len(opts.Thresholds) >= MaxThresholds {
		return nil, fmt.Errorf("%d thresholds: at most %d", len(opts.Thresholds)+1, MaxThresholds)
	}
	t := &Tracker{
		opts:   opts,
		c:      c,
		slots:  make([]slot, opts.Capacity),
		index:  make(map[uint32]int32),
		free:   make([]int32, opts.Capacity),
		stHead: nilIdx, stTail: nilIdx,
		sweepNext: nilIdx,
	}
	for k := range t.liveHead {
		t.liveHead[k], t.liveTail[k] = nilIdx, nilIdx
	}
	if err := t.setThresholds(opts.Thresholds); err != nil {
		return nil, err
	}
	if opts.PidLimit > 0 && opts.PidLimit <= MaxDenseIndex {
		t.dense = make([]int32, opts.PidLimit)
	} else {
		t.index = make(map[uint32]int32, opts.Capacity)
	}
	t.tx.t = t
	t.checks = make([]check, 0, scanBatch)
	for i := range t.free {
		t.free[i] = int32(opts.Capacity - 1 - i)
		t.slots[i].prev, t.slots[i].next = nilIdx, nilIdx
	}
	return t, nil
}

func (t *Tracker) lookup(pid uint32) (int32, bool) {
	if pid < uint32(len(t.dense)) {
		v := t.dense[pid]
		return v - 1, v != 0
	}
	idx, ok := t.index[pid]
	return idx, ok
}

func (t *Tracker) setIndex(pid uint32, idx int32) {
	if pid < uint32(len(t.dense)) {
		t.dense[pid] = idx + 1
		return
	}
	t.index[pid] = idx
}

func (t *Tracker) clearIndex(pid uint32) {
	if pid < uint32(len(t.dense)) {
		t.dense[pid] = 0
		return
	}
	delete(t.index, pid)
}

// Tx is the tracker opened under its lock for the duration of one Update
// callback. It must not be kept or used after the callback returns.
type Tx struct{ t *Tracker }

// Update runs fn with the tracker lock held (ingest takes it once per
// received batch). fn must not call Tracker methods (they would
// deadlock) and must not block; it may emit events (lock order: tracker,
// then the events writer). Bind fn once (a method value stored in a
// field) so that Update does not allocate.
func (t *Tracker) Update(fn func(tx *Tx)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fn(&t.tx)
}

// Identity is the outcome of a process-identity read (Identify).
type Identity struct {
	ID  procfs.Identity
	Err error
}

// Identify reads pid's identity through the Resolver without the lock.
// It reports an error when no Resolver is configured.
func (t *Tracker) Identify(pid uint32) Identity {
	if t.opts.Resolver == nil {
		return Identity{Err: errNoResolver}
	}
	id, err := t.opts.Resolver.Identity(pid)
	return Identity{ID: id, Err: err}
}

var errNoResolver = errors.New("no identity resolver")

// Observe applies the tracker rules to one decoded frame received at now
// (stall clock ns) with the given origin. It takes the lock itself and
// reads the sender's identity, when the rules need it, without the lock.
func (t *Tracker) Observe(f *vlp.Frame, origin vlp.Origin, now int64) Result {
	t.mu.Lock()
	r := t.observe(f, origin, now, nil)
	t.mu.Unlock()
	if r.Verdict != NeedIdentity {
		return r
	}
	id := t.Identify(f.Pid)
	t.mu.Lock()
	r = t.observe(f, origin, now, &id)
	t.mu.Unlock()
	return r
}

// Observe applies the tracker rules to one decoded frame. It returns
// NeedIdentity, having changed nothing, when the decision needs the
// sender's process identity; the caller then calls Identify outside the
// lock and ObserveIdentified under it.
func (tx *Tx) Observe(f *vlp.Frame, origin vlp.Origin, now int64) Result {
	return tx.t.observe(f, origin, now, nil)
}

// ObserveIdentified is Observe with the sender's identity already read
// (Identify); it never returns NeedIdentity.
func (tx *Tx) ObserveIdentified(f *vlp.Frame, origin vlp.Origin, now int64, id Identity) Result {
	return tx.t.observe(f, origin, now, &id)
}

// GaspPending reports whether pid is tracked and its last accepted frame
// was a regular beat, so that its next terminal frame would be its dying
// gasp.
func (tx *Tx) GaspPending(pid uint32) bool {
	t := tx.t
	idx, ok := t.lookup(pid)
	if !ok {
		return false
	}
	s := &t.slots[idx]
	return s.hasNonce && !s.gaspSent
}

// Capacity returns the number of slots.
func (t *Tracker) Capacity() int { return len(t.slots) }

// Tracked returns the number of occupied slots.
func (t *Tracker) Tracked() int { return int(t.tracked.Load()) }

// Stalled returns how many tracked agents are stalled (surfaced and not
// heard from since). Safe without the lock.
func (t *Tracker) Stalled() int { return int(t.stalled.Load()) }

// AgentView is a lock-free snapshot of one slot for the metrics exporter.
type AgentView struct {
	Pid     uint32
	Beats   uint64
	Stalls  uint64
	Status  vlp.Status
	Payload uint32
	Ident   *identity.Info // nil until resolved (and for UDP agents)
}

// EachAgent calls fn for every occupied slot without taking the lock. A
// slot that changes owner during the read is skipped.
func (t *Tracker) EachAgent(fn func(AgentView)) {
	for i := range t.slots {
		s := &t.slots[i]
		pid := s.pid.Load()
		if pid == 0 {
			continue
		}
		v := AgentView{
			Pid:     pid,
			Beats:   s.beats.Load(),
			Stalls:  s.stalls.Load(),
			Status:  vlp.Status(s.status.Load()),
			Payload: s.payload.Load(),
			Ident:   s.ident.Load(),
		}
		if s.pid.Load() != pid {
			continue
		}
		fn(v)
	}
}

// observe is Observe under the lock. id is the sender's identity when the
// caller has read it, nil otherwise (NeedIdentity is then returned where
// it is needed, before anything changes).
func (t *Tracker) observe(f *vlp.Frame, origin vlp.Origin, now int64, id *Identity) Result {
	idx, known := t.lookup(f.Pid)
	if !known {
		return t.admit(f, origin, now, id)
	}
	s := &t.slots[idx]

	// Origin pinning.
	if origin < s.origin {
		t.c.OriginConflict.Add(1)
		return Result{Verdict: DroppedOriginConflict}
	}
	if origin > s.origin {
		// A stronger origin replaces the weaker stream.
		st, v := t.pin(origin, id)
		if v != Accepted {
			return Result{Verdict: v}
		}
		return t.restart(idx, f, st, now)
	}

	if v := t.rateLimit(s, f, now); v != Accepted {
		return Result{Verdict: v}
	}

	if !t.inOrder(s, f) {
		// Anomaly: a restarted process that reused the pid starts over at
		// nonce 1. Re-check the identity of kernel-attested senders.
		if s.origin == vlp.OriginKernelAttested && t.opts.Resolver != nil {
			if id == nil {
				return Result{Verdict: NeedIdentity}
			}
			if id.Err == nil && id.ID.Generation != s.generation {
				t.c.TrackerPidRecycle.Add(1)
				t.namespaceChanged(s, id.ID)
				st, v := t.withIdentity(stream{origin: origin}, id.ID)
				if v != Accepted {
					t.release(idx)
					return Result{Verdict: v}
				}
				return t.restart(idx, f, st, now)
			}
		}
		t.c.OutOfOrder.Add(1)
		return Result{Verdict: DroppedOutOfOrder}
	}
	wasEmpty := t.nlive == 0
	seen := t.accept(idx, f, now)
	return Result{Verdict: Accepted, WasEmpty: wasEmpty, Ident: s.ident.Load(), Epoch: s.epoch, Seen: seen}
}

// restart begins a fresh stream in slot idx with frame f.
func (t *Tracker) restart(idx int32, f *vlp.Frame, st stream, now int64) Result {
	wasEmpty := t.nlive == 0
	t.reset(idx, f.Pid, st)
	seen := t.accept(idx, f, now)
	return Result{Verdict: Accepted, First: true, WasEmpty: wasEmpty, Epoch: t.slots[idx].epoch, Seen: seen}
}

// inOrder applies the nonce rules (and counts a wrap).
func (t *Tracker) inOrder(s *slot, f *vlp.Frame) bool {
	if s.adopted {
		return true // the first frame after a restart starts a new stream
	}
	if f.IsTerminal() {
		return !s.hasTerminal || f.Timestamp > s.lastTerminalTs
	}
	if !s.hasNonce || f.Nonce > s.lastNonce {
		return true
	}
	if s.lastNonce >= ^uint64(0)-NonceWrapWindow+1 && f.Nonce <= NonceWrapWindow {
		t.c.NonceWrap.Add(1)
		return true
	}
	return false
}

// rateLimit enforces --max-beat-rate for a tracked pid.
func (t *Tracker) rateLimit(s *slot, f *vlp.Frame, now int64) Verdict {
	if t.opts.MaxBeatRate <= 0 {
		return Accepted
	}
	if f.IsTerminal() && !s.gaspSent {
		return Accepted // a dying gasp is never rate-limited
	}
	if now-s.rateStart >= 1e9 {
		s.rateStart = now
		s.rateCount = 0
	}
	if s.rateCount >= uint32(t.opts.MaxBeatRate) {
		t.c.RateLimited[stats.RateLimitPerPid].Add(1)
		return DroppedRateLimited
	}
	return Accepted
}

// stream is what a slot pins when a new stream starts: its origin and, for
// kernel-attested senders, the process identity.
type stream struct {
	origin  vlp.Origin
	id      procfs.Identity
	crossNS bool
}

// pin pins the identity of a new stream (NeedIdentity when a
// kernel-attested sender's identity has not been read yet). A
// kernel-attested sender whose identity cannot be read (it exited between
// sending and our read) is trusted no more than the socket's mode:
// SocketModeOnly.
func (t *Tracker) pin(origin vlp.Origin, id *Identity) (stream, Verdict) {
	st := stream{origin: origin}
	if origin != vlp.OriginKernelAttested || t.opts.Resolver == nil {
		return st, Accepted
	}
	if id == nil {
		return st, NeedIdentity
	}
	if id.Err != nil {
		st.origin = vlp.OriginSocketModeOnly
		return st, Accepted
	}
	return t.withIdentity(st, id.ID)
}

// namespaceChanged counts varta_tracker_namespace_conflict_total when a
// tracked pid, re-read on an anomaly (nonce regression, stall evaluation),
// belongs to a process in another PID namespace than the one pinned: the
// pid was reused across namespaces, and the pinned stream is not updated
// with it (it is discarded; the newcomer is judged as a first contact).
func (t *Tracker) namespaceChanged(s *slot, id procfs.Identity) {
	if s.nsInode != 0 && id.NSInode != s.nsInode {
		t.c.TrackerNamespaceConflict.Add(1)
	}
}

// withIdentity pins id and applies the namespace rule.
func (t *Tracker) withIdentity(st stream, id procfs.Identity) (stream, Verdict) {
	st.id = id
	st.crossNS = t.opts.SelfNS != 0 && id.NSInode != t.opts.SelfNS
	if st.crossNS && !t.opts.AllowCrossNamespace {
		t.c.FrameNamespaceMismatch.Add(1)
		return st, DroppedNamespace
	}
	return st, Accepted
}

// admit handles the first frame from an unknown pid.
func (t *Tracker) admit(f *vlp.Frame, origin vlp.Origin, now int64, id *Identity) Result {
	st, v := t.pin(origin, id)
	if v != Accepted {
		return Result{Verdict: v}
	}
	var evicted uint32
	if len(t.free) == 0 {
		victim := t.victim(now)
		if victim == nilIdx {
			t.c.TrackerCapacityExceeded.Add(1)
			return Result{Verdict: DroppedCapacity}
		}
		evicted = t.slots[victim].pid.Load()
		t.release(victim)
		t.c.TrackerEvicted.Add(1)
	}
	idx := t.free[len(t.free)-1]
	t.free = t.free[:len(t.free)-1]
	t.setIndex(f.Pid, idx)
	t.tracked.Add(1)
	r := t.restart(idx, f, st, now)
	r.Evicted = evicted
	return r
}

// victim picks a slot to evict, or nilIdx.
func (t *Tracker) victim(now int64) int32 {
	if h := t.stHead; h != nilIdx && now-t.slots[h].lastSeen > 10*t.ths[t.slots[h].th] {
		return h
	}
	if t.opts.Policy == Balanced {
		for k := range t.nths {
			if h := t.liveHead[k]; h != nilIdx && now-t.slots[h].lastSeen > 10*t.ths[k] {
				return h
			}
		}
	}
	return nilIdx
}

// reset starts a fresh stream in slot idx (unlinked from any list).
func (t *Tracker) reset(idx int32, pid uint32, st stream) {
	s := &t.slots[idx]
	t.unlink(idx)
	s.lastNonce, s.lastTerminalTs = 0, 0
	s.hasNonce, s.hasTerminal, s.gaspSent, s.adopted = false, false, false, false
	s.rateStart, s.rateCount = 0, 0
	s.origin = st.origin
	s.nsInode, s.generation = st.id.NSInode, st.id.Generation
	s.crossNS = st.crossNS
	s.th = 0
	s.epoch++
	s.ident.Store(nil)
	s.beats.Store(0)
	s.stalls.Store(0)
	s.status.Store(uint32(vlp.StatusOk))
	s.payload.Store(0)
	s.pid.Store(pid)
}

// accept records an accepted frame and moves the slot to the live tail,
// returning the time recorded as its last beat: now, or the live tail's
// last beat if that is later (a beat stamped with its kernel arrival time
// may be older than one already accepted from another socket; the live
// list must stay ordered by last beat).
func (t *Tracker) accept(idx int32, f *vlp.Frame, now int64) int64 {
	s := &t.slots[idx]
	s.adopted = false
	if f.IsTerminal() {
		s.lastTerminalTs = f.Timestamp
		s.hasTerminal = true
		s.gaspSent = true
	} else {
		s.lastNonce = f.Nonce
		s.hasNonce = true
		s.gaspSent = false
	}
	if t.opts.MaxBeatRate > 0 {
		if s.rateCount == 0 && now-s.rateStart >= 1e9 {
			s.rateStart = now
		}
		s.rateCount++
	}
	t.unlink(idx)
	if tail := t.liveTail[s.th]; tail != nilIdx && t.slots[tail].lastSeen > now {
		now = t.slots[tail].lastSeen
	}
	s.lastSeen = now
	s.status.Store(uint32(f.Status))
	s.payload.Store(f.Payload)
	s.beats.Add(1)
	t.pushBack(idx, listLive)
	return now
}

// release frees slot idx.
func (t *Tracker) release(idx int32) {
	s := &t.slots[idx]
	pid := s.pid.Load()
	t.unlink(idx)
	t.clearIndex(pid)
	s.pid.Store(0)
	t.free = append(t.free, idx)
	t.tracked.Add(-1)
}

func (t *Tracker) unlink(idx int32) {
	s := &t.slots[idx]
	var head, tail *int32
	switch s.list {
	case listLive:
		head, tail = &t.liveHead[s.th], &t.liveTail[s.th]
		t.nlive--
	case listStalled:
		head, tail = &t.stHead, &t.stTail
		t.stalled.Add(-1)
	default:
		return
	}
	if s.prev != nilIdx {
		t.slots[s.prev].next = s.next
	} else {
		*head = s.next
	}
	if s.next != nilIdx {
		t.slots[s.next].prev = s.prev
	} else {
		*tail = s.prev
	}
	s.prev, s.next, s.list = nilIdx, nilIdx, listNone
}

func (t *Tracker) pushBack(idx int32, list uint8) {
	s := &t.slots[idx]
	head, tail := &t.stHead, &t.stTail
	if list == listLive {
		head, tail = &t.liveHead[s.th], &t.liveTail[s.th]
		t.nlive++
	} else {
		t.stalled.Add(1)
	}
	s.list = list
	s.next = nilIdx
	s.prev = *tail
	if *tail != nilIdx {
		t.slots[*tail].next = idx
	} else {
		*head = idx
	}
	*tail = idx
}

// Grace postpones every stall to no earlier than until (stall clock ns).
// The observer calls it after a forward clock jump so that agents get one
// threshold of grace instead of all being declared stalled at once.
func (t *Tracker) Grace(until int64) {
	t.mu.Lock()
	if until > t.graceUntil {
		t.graceUntil = until
	}
	t.mu.Unlock()
}

// NextDeadline returns when the oldest live slot becomes due, and false
// when no slot is live.
func (t *Tracker) NextDeadline() (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nextDeadlineLocked()
}

func (t *Tracker) nextDeadlineLocked() (int64, bool) {
	best, ok := int64(0), false
	for k := range t.nths {
		if h := t.liveHead[k]; h != nilIdx {
			if d := t.slots[h].lastSeen + t.ths[k]; !ok || d < best {
				best, ok = d, true
			}
		}
	}
	if ok && best < t.graceUntil {
		best = t.graceUntil
	}
	return best, ok
}

// scanBatch bounds how many due slots Due checks per /proc round trip.
const scanBatch = 256

// check is a slot Due or Sweep looked at under the lock and will decide
// on after a /proc read done without it.
type check struct {
	idx      int32
	pid      uint32
	gen      uint64
	lastSeen int64
	deadline int64
	id       Identity
	identify bool // Due: re-read the identity
	alive    bool // Sweep: the process exists
}

// same reports whether slot c.idx is still what was looked at: same pid,
// same stream, no frame accepted since.
func (t *Tracker) same(c *check) bool {
	s := &t.slots[c.idx]
	return s.pid.Load() == c.pid && s.generation == c.gen && s.lastSeen == c.lastSeen
}

// Due surfaces every stall whose deadline is ≤ now, calling fn for each
// (with the lock held: fn must not call back into the tracker).
// Kernel-attested slots are re-identified first: a pid that now belongs to
// another process is retired silently. The /proc reads happen without the
// lock; a slot that accepted a frame meanwhile is no longer due and is left
// alone. NextDeadline tells when to call it again.
func (t *Tracker) Due(now int64, fn func(Stall)) {
	t.mu.Lock()
	if !t.surfaceHead(now, fn) {
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	t.scanMu.Lock()
	defer t.scanMu.Unlock()
	for {
		t.mu.Lock()
		more := t.dueLocked(now, fn)
		if !more {
			t.mu.Unlock()
			return
		}
		t.mu.Unlock()
		for i := range t.checks {
			c := &t.checks[i]
			if c.identify {
				c.id = t.Identify(c.pid)
			}
		}
		t.mu.Lock()
		t.finishDue(now, fn)
		t.mu.Unlock()
	}
}

// deadline is slot s's stall deadline.
func (t *Tracker) deadline(s *slot) int64 {
	d := s.lastSeen + t.ths[s.th]
	if d < t.graceUntil {
		d = t.graceUntil
	}
	return d
}

// needsIdentity reports whether surfacing s requires re-reading its
// identity.
func (t *Tracker) needsIdentity(s *slot) bool {
	return s.origin == vlp.OriginKernelAttested && t.opts.Resolver != nil
}

// surfaceHead surfaces due slots from the head of the live list until
// the first one that needs an identity read, and reports whether there is
// one.
func (t *Tracker) surfaceHead(now int64, fn func(Stall)) bool {
	for {
		idx := t.earliestHead()
		if idx == nilIdx {
			return false
		}
		s := &t.slots[idx]
		if t.deadline(s) > now {
			return false
		}
		if t.needsIdentity(s) {
			return true
		}
		t.stall(idx, now, fn)
	}
}

// dueLocked surfaces due slots that need no identity read (surfaceHead);
// from the first that does, it lists up to scanBatch due slots in
// t.checks and reports true.
func (t *Tracker) dueLocked(now int64, fn func(Stall)) bool {
	t.checks = t.checks[:0]
	if !t.surfaceHead(now, fn) {
		return false
	}
	for k := range t.nths {
		for idx := t.liveHead[k]; idx != nilIdx && len(t.checks) < scanBatch; idx = t.slots[idx].next {
			s := &t.slots[idx]
			d := t.deadline(s)
			if d > now {
				break
			}
			t.checks = append(t.checks, check{idx: idx, pid: s.pid.Load(), gen: s.generation, lastSeen: s.lastSeen, deadline: d, identify: t.needsIdentity(s)})
		}
	}
	// Decide in deadline order across the lists.
	slices.SortStableFunc(t.checks, func(a, b check) int { return cmp.Compare(a.deadline, b.deadline) })
	return len(t.checks) > 0
}

// finishDue decides the slots dueLocked listed, in list order.
func (t *Tracker) finishDue(now int64, fn func(Stall)) {
	for i := range t.checks {
		c := &t.checks[i]
		s := &t.slots[c.idx]
		if !t.same(c) || s.list != listLive || t.deadline(s) > now {
			continue
		}
		if t.needsIdentity(s) && c.id.Err == nil && c.id.ID.Generation != s.generation {
			t.c.TrackerPidRecycle.Add(1)
			t.namespaceChanged(s, c.id.ID)
			t.release(c.idx)
			continue
		}
		t.stall(c.idx, now, fn)
	}
}

// stall moves live slot idx to the stalled list and reports it.
func (t *Tracker) stall(idx int32, now int64, fn func(Stall)) {
	s := &t.slots[idx]
	deadline := t.deadline(s)
	t.unlink(idx)
	t.pushBack(idx, listStalled)
	s.status.Store(uint32(vlp.StatusStall))
	s.stalls.Add(1)
	fn(Stall{
		Pid: s.pid.Load(), Nonce: s.lastNonce, Generation: s.generation,
		Origin: s.origin, CrossNamespace: s.crossNS,
		Deadline: deadline, Surfaced: now,
		Ident: s.ident.Load(), Threshold: t.ths[s.th],
	})
}

// sweepScan bounds how many stalled slots one Sweep looks at under the
// lock.
const sweepScan = 4096

// Sweep retires up to max stalled slots whose process no longer exists
// (kernel-attested slots only; alive reports existence). alive is called
// without the lock. It walks the stalled list (at most sweepScan slots,
// never more than once round it), going on where the previous Sweep
// stopped, so its cost does not grow with the table: a full table of
// agents that beat costs nothing.
func (t *Tracker) Sweep(max int, alive func(pid uint32) bool) {
	t.scanMu.Lock()
	defer t.scanMu.Unlock()
	t.mu.Lock()
	t.checks = t.checks[:0]
	idx := t.sweepNext
	if idx == nilIdx || t.slots[idx].list != listStalled {
		idx = t.stHead
	}
	for steps, limit := 0, min(int(t.stalled.Load()), sweepScan); idx != nilIdx && steps < limit && len(t.checks) < max; steps++ {
		s := &t.slots[idx]
		if s.origin == vlp.OriginKernelAttested {
			t.checks = append(t.checks, check{idx: idx, pid: s.pid.Load(), gen: s.generation, lastSeen: s.lastSeen})
		}
		if idx = s.next; idx == nilIdx {
			idx = t.stHead
		}
	}
	t.sweepNext = idx
	t.mu.Unlock()
	dead := 0
	for i := range t.checks {
		c := &t.checks[i]
		c.alive = alive(c.pid)
		if !c.alive {
			dead++
		}
	}
	if dead == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range t.checks {
		c := &t.checks[i]
		if c.alive || !t.same(c) || t.slots[c.idx].list != listStalled {
			continue
		}
		t.release(c.idx)
	}
}

// Snapshot is the state of one slot, for tests and the recovery verifier.
type Snapshot struct {
	Pid            uint32
	LastNonce      uint64
	LastSeen       int64
	Origin         vlp.Origin
	Generation     uint64
	Stalled        bool
	CrossNamespace bool
	Status         vlp.Status
	Beats, Stalls  uint64
	Ident          *identity.Info
	Threshold      int64
}

// Lookup returns the state of pid's slot.
func (t *Tracker) Lookup(pid uint32) (Snapshot, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	idx, ok := t.lookup(pid)
	if !ok {
		return Snapshot{}, false
	}
	s := &t.slots[idx]
	return Snapshot{
		Pid: pid, LastNonce: s.lastNonce, LastSeen: s.lastSeen, Origin: s.origin,
		Generation: s.generation, Stalled: s.list == listStalled, CrossNamespace: s.crossNS,
		Status: vlp.Status(s.status.Load()), Beats: s.beats.Load(), Stalls: s.stalls.Load(),
		Ident: s.ident.Load(), Threshold: t.ths[s.th],
	}, true
}

// setThresholds installs the command-line threshold (index 0) and extra.
// Lists of indices that no longer exist must be empty.
func (t *Tracker) setThresholds(extra []int64) error {
	if len(extra) >= MaxThresholds {
		return fmt.Errorf("%d thresholds: at most %d", len(extra)+1, MaxThresholds)
	}
	t.ths[0] = t.opts.Threshold
	for i, d := range extra {
		if d <= 0 {
			return errors.New("tracker threshold must be positive")
		}
		t.ths[i+1] = d
	}
	t.nths = 1 + len(extra)
	return nil
}

// earliestHead returns the live list head with the earliest deadline, or
// nilIdx when no slot is live. It looks at every list head (at most
// MaxThresholds).
func (t *Tracker) earliestHead() int32 {
	best, bestD := nilIdx, int64(0)
	for k := range t.nths {
		if h := t.liveHead[k]; h != nilIdx {
			if d := t.slots[h].lastSeen + t.ths[k]; best == nilIdx || d < bestD {
				best, bestD = h, d
			}
		}
	}
	return best
}

// Thresholds returns the thresholds in force, index 0 first (the
// command line's).
func (t *Tracker) Thresholds() []int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.ths[:t.nths])
}

// SetIdent publishes the identity of pid's current stream (epoch from the
// Result that opened it; gen, when not 0, must be its generation) and
// gives it threshold index th. It reports false, changing nothing, when
// the slot holds another stream by now. A live slot moves to the list of
// its new threshold, in lastSeen order (from the tail: the slot beat
// recently, so this is a step or two).
func (t *Tracker) SetIdent(pid uint32, epoch uint32, gen uint64, info *identity.Info, th int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	idx, ok := t.lookup(pid)
	if !ok {
		return false
	}
	s := &t.slots[idx]
	if s.epoch != epoch || (gen != 0 && s.generation != 0 && s.generation != gen) {
		return false
	}
	if th < 0 || th >= t.nths {
		th = 0
	}
	s.ident.Store(info)
	t.moveTo(idx, uint8(th))
	return true
}

// moveTo gives slot idx threshold index th, keeping the live lists in
// lastSeen order.
func (t *Tracker) moveTo(idx int32, th uint8) {
	s := &t.slots[idx]
	if s.th == th {
		return
	}
	if s.list != listLive {
		s.th = th
		return
	}
	t.unlink(idx)
	s.th = th
	t.insertLive(idx)
}

// insertLive links unlinked slot idx into its live list after the last
// slot that was seen no later than it.
func (t *Tracker) insertLive(idx int32) {
	s := &t.slots[idx]
	k := s.th
	after := t.liveTail[k]
	for after != nilIdx && t.slots[after].lastSeen > s.lastSeen {
		after = t.slots[after].prev
	}
	s.list = listLive
	t.nlive++
	s.prev = after
	if after == nilIdx {
		s.next = t.liveHead[k]
		t.liveHead[k] = idx
	} else {
		s.next = t.slots[after].next
		t.slots[after].next = idx
	}
	if s.next == nilIdx {
		t.liveTail[k] = idx
	} else {
		t.slots[s.next].prev = idx
	}
}

// Retarget installs new extra thresholds (a policy reload) and gives every
// slot the identity and threshold index classify returns for its current
// identity (slots without one keep index 0 and nil). The live lists are
// rebuilt in lastSeen order: O(n log n) in the tracked agents, once per
// reload.
func (t *Tracker) Retarget(extra []int64, classify func(*identity.Info) (*identity.Info, int)) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(extra) >= MaxThresholds {
		return fmt.Errorf("%d thresholds: at most %d", len(extra)+1, MaxThresholds)
	}
	var live []int32
	for k := range t.nths {
		for idx := t.liveHead[k]; idx != nilIdx; idx = t.slots[idx].next {
			live = append(live, idx)
		}
		t.liveHead[k], t.liveTail[k] = nilIdx, nilIdx
	}
	t.nlive = 0
	if err := t.setThresholds(extra); err != nil {
		return err
	}
	for i := range t.slots {
		s := &t.slots[i]
		if s.pid.Load() == 0 {
			continue
		}
		th := 0
		if info := s.ident.Load(); info != nil {
			ni, k := classify(info)
			if ni != info {
				s.ident.Store(ni)
			}
			if k > 0 && k < t.nths {
				th = k
			}
		}
		s.th = uint8(th)
	}
	slices.SortFunc(live, func(a, b int32) int { return cmp.Compare(t.slots[a].lastSeen, t.slots[b].lastSeen) })
	for _, idx := range live {
		s := &t.slots[idx]
		s.list = listNone
		s.prev, s.next = nilIdx, nilIdx
		t.pushBack(idx, listLive)
	}
	return nil
}
