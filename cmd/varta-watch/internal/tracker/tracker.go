package tracker

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

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
	// PidLimit, when between 1 and MaxDenseIndex, promises that every pid
	// handed to Observe is below it (the observer passes pid_max: kernel
	// pids are, and claimed UDP pids are checked against it first). The
	// pid → slot index is then a plain array instead of a hash map: one
	// memory access per beat. Pids at or above it fall back to the map.
	PidLimit uint32
}

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
}

// Stall describes a surfaced stall.
type Stall struct {
	Pid            uint32
	Nonce          uint64 // last accepted regular nonce
	Generation     uint64
	Origin         vlp.Origin
	CrossNamespace bool
	Deadline       int64 // when the stall became due (stall clock ns)
	Surfaced       int64 // when it was surfaced
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
	pid     atomic.Uint32 // atomic; 0 = free
	status  atomic.Uint32 // atomic; vlp.Status, Stall while stalled
	payload atomic.Uint32 // atomic
	beats   atomic.Uint64 // atomic
	stalls  atomic.Uint64 // atomic

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
}

// Tracker holds the per-pid slots. Observe and the *Locked methods must be
// called with the lock held (Lock/Unlock); the other methods lock
// internally. EachAgent, Tracked and Capacity never lock.
type Tracker struct {
	mu    sync.Mutex
	opts  Options
	c     *stats.Counters
	slots []slot
	index map[uint32]int32
	dense []int32 // pid → slot index + 1 (0 = none) for pids < len(dense)
	free  []int32
	// live: slots not stalled, ordered by lastSeen (head = oldest).
	liveHead, liveTail int32
	// stalled: slots whose stall was surfaced, in surfacing order.
	stHead, stTail int32
	tracked        atomic.Int64
	graceUntil     int64
	sweepCursor    int
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
	t := &Tracker{
		opts:     opts,
		c:        c,
		slots:    make([]slot, opts.Capacity),
		index:    make(map[uint32]int32),
		free:     make([]int32, opts.Capacity),
		liveHead: nilIdx, liveTail: nilIdx,
		stHead: nilIdx, stTail: nilIdx,
	}
	if opts.PidLimit > 0 && opts.PidLimit <= MaxDenseIndex {
		t.dense = make([]int32, opts.PidLimit)
	} else {
		t.index = make(map[uint32]int32, opts.Capacity)
	}
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

// Lock takes the tracker lock (one acquisition per received batch).
func (t *Tracker) Lock() { t.mu.Lock() }

// Unlock releases the tracker lock.
func (t *Tracker) Unlock() { t.mu.Unlock() }

// Capacity returns the number of slots.
func (t *Tracker) Capacity() int { return len(t.slots) }

// Tracked returns the number of occupied slots.
func (t *Tracker) Tracked() int { return int(t.tracked.Load()) }

// AgentView is a lock-free snapshot of one slot for the metrics exporter.
type AgentView struct {
	Pid     uint32
	Beats   uint64
	Stalls  uint64
	Status  vlp.Status
	Payload uint32
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
		}
		if s.pid.Load() != pid {
			continue
		}
		fn(v)
	}
}

// Observe applies the tracker rules to one decoded frame received at now
// (stall clock ns) with the given origin. The caller holds the lock.
func (t *Tracker) Observe(f *vlp.Frame, origin vlp.Origin, now int64) Result {
	idx, known := t.lookup(f.Pid)
	if !known {
		return t.admit(f, origin, now)
	}
	s := &t.slots[idx]

	// Origin pinning.
	if origin < s.origin {
		t.c.OriginConflict.Add(1)
		return Result{Verdict: DroppedOriginConflict}
	}
	if origin > s.origin {
		// A stronger origin replaces the weaker stream.
		st, v := t.pin(f.Pid, origin)
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
			id, err := t.opts.Resolver.Identity(f.Pid)
			if err == nil && id.Generation != s.generation {
				t.c.TrackerPidRecycle.Add(1)
				st, v := t.withIdentity(stream{origin: origin}, id)
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
	wasEmpty := t.liveHead == nilIdx
	t.accept(idx, f, now)
	return Result{Verdict: Accepted, WasEmpty: wasEmpty}
}

// restart begins a fresh stream in slot idx with frame f.
func (t *Tracker) restart(idx int32, f *vlp.Frame, st stream, now int64) Result {
	wasEmpty := t.liveHead == nilIdx
	t.reset(idx, f.Pid, st)
	t.accept(idx, f, now)
	return Result{Verdict: Accepted, First: true, WasEmpty: wasEmpty}
}

// inOrder applies the nonce rules (and counts a wrap).
func (t *Tracker) inOrder(s *slot, f *vlp.Frame) bool {
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

// pin resolves the identity of a new stream. A kernel-attested sender
// whose identity cannot be read (it exited between sending and our read)
// is trusted no more than the socket's mode: SocketModeOnly.
func (t *Tracker) pin(pid uint32, origin vlp.Origin) (stream, Verdict) {
	st := stream{origin: origin}
	if origin != vlp.OriginKernelAttested || t.opts.Resolver == nil {
		return st, Accepted
	}
	id, err := t.opts.Resolver.Identity(pid)
	if err != nil {
		st.origin = vlp.OriginSocketModeOnly
		return st, Accepted
	}
	return t.withIdentity(st, id)
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
func (t *Tracker) admit(f *vlp.Frame, origin vlp.Origin, now int64) Result {
	st, v := t.pin(f.Pid, origin)
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
	limit := 10 * t.opts.Threshold
	if h := t.stHead; h != nilIdx && now-t.slots[h].lastSeen > limit {
		return h
	}
	if t.opts.Policy == Balanced {
		if h := t.liveHead; h != nilIdx && now-t.slots[h].lastSeen > limit {
			return h
		}
	}
	return nilIdx
}

// reset starts a fresh stream in slot idx (unlinked from any list).
func (t *Tracker) reset(idx int32, pid uint32, st stream) {
	s := &t.slots[idx]
	t.unlink(idx)
	s.lastNonce, s.lastTerminalTs = 0, 0
	s.hasNonce, s.hasTerminal, s.gaspSent = false, false, false
	s.rateStart, s.rateCount = 0, 0
	s.origin = st.origin
	s.nsInode, s.generation = st.id.NSInode, st.id.Generation
	s.crossNS = st.crossNS
	s.beats.Store(0)
	s.stalls.Store(0)
	s.status.Store(uint32(vlp.StatusOk))
	s.payload.Store(0)
	s.pid.Store(pid)
}

// accept records an accepted frame and moves the slot to the live tail.
func (t *Tracker) accept(idx int32, f *vlp.Frame, now int64) {
	s := &t.slots[idx]
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
	s.lastSeen = now
	s.status.Store(uint32(f.Status))
	s.payload.Store(f.Payload)
	s.beats.Add(1)
	t.unlink(idx)
	t.pushBack(idx, listLive)
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
		head, tail = &t.liveHead, &t.liveTail
	case listStalled:
		head, tail = &t.stHead, &t.stTail
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
	head, tail := &t.liveHead, &t.liveTail
	if list == listStalled {
		head, tail = &t.stHead, &t.stTail
	}
	s := &t.slots[idx]
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
	if t.liveHead == nilIdx {
		return 0, false
	}
	d := t.slots[t.liveHead].lastSeen + t.opts.Threshold
	if d < t.graceUntil {
		d = t.graceUntil
	}
	return d, true
}

// Due surfaces every stall whose deadline is ≤ now, calling fn for each
// (with the lock held: fn must not call back into the tracker), and returns
// the next deadline. Kernel-attested slots are re-identified first: a pid
// that now belongs to another process is retired silently.
func (t *Tracker) Due(now int64, fn func(Stall)) (next int64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.liveHead != nilIdx {
		idx := t.liveHead
		s := &t.slots[idx]
		deadline := s.lastSeen + t.opts.Threshold
		if deadline < t.graceUntil {
			deadline = t.graceUntil
		}
		if deadline > now {
			break
		}
		pid := s.pid.Load()
		if s.origin == vlp.OriginKernelAttested && t.opts.Resolver != nil {
			id, err := t.opts.Resolver.Identity(pid)
			if err == nil && id.Generation != s.generation {
				t.c.TrackerPidRecycle.Add(1)
				t.release(idx)
				continue
			}
		}
		t.unlink(idx)
		t.pushBack(idx, listStalled)
		s.status.Store(uint32(vlp.StatusStall))
		s.stalls.Add(1)
		fn(Stall{
			Pid: pid, Nonce: s.lastNonce, Generation: s.generation,
			Origin: s.origin, CrossNamespace: s.crossNS,
			Deadline: deadline, Surfaced: now,
		})
	}
	return t.nextDeadlineLocked()
}

// Sweep retires up to max stalled slots whose process no longer exists
// (kernel-attested slots only; alive reports existence), returning the
// retired pids through fn.
func (t *Tracker) Sweep(max int, alive func(pid uint32) bool, fn func(pid uint32)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(t.slots)
	checked := 0
	for i := 0; i < n && checked < max; i++ {
		idx := t.sweepCursor
		t.sweepCursor = (t.sweepCursor + 1) % n
		s := &t.slots[idx]
		if s.list != listStalled || s.origin != vlp.OriginKernelAttested {
			continue
		}
		checked++
		pid := s.pid.Load()
		if !alive(pid) {
			t.release(int32(idx))
			if fn != nil {
				fn(pid)
			}
		}
	}
}

// GaspPending reports whether pid is tracked and its last accepted frame
// was a regular beat, so that its next terminal frame would be its dying
// gasp. The caller holds the lock.
func (t *Tracker) GaspPending(pid uint32) bool {
	idx, ok := t.lookup(pid)
	if !ok {
		return false
	}
	s := &t.slots[idx]
	return s.hasNonce && !s.gaspSent
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
	}, true
}
