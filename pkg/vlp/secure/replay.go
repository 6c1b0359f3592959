package secure

import (
	"sync"
	"time"

	"github.com/varta-go/varta/pkg/vlp"
)

// Defaults of ReplayConfig.
const (
	DefaultReplayCapacity = 1024
	DefaultReplayIdle     = 600 * time.Second
)

// Verdict is the outcome of ReplayGuard.Check.
type Verdict uint8

// Verdicts. Replay is counted as varta_secure_replay_refused_total,
// TableFull as varta_sender_state_full_total.
const (
	Accepted Verdict = iota
	Replay
	TableFull
)

func (v Verdict) String() string {
	switch v {
	case Accepted:
		return "accepted"
	case Replay:
		return "replay"
	case TableFull:
		return "table_full"
	}
	return "unknown"
}

// ReplayConfig bounds the sender table of a ReplayGuard.
type ReplayConfig struct {
	// Capacity is the number of senders (pids) tracked; 0 means
	// DefaultReplayCapacity.
	Capacity int
	// IdleTimeout drops a sender that had no accepted frame for this long;
	// 0 means DefaultReplayIdle.
	IdleTimeout time.Duration
}

type prefixState struct {
	random [IVRandomSize]byte
	hw     uint32 // highest counter accepted under random
	set    bool
}

type senderState struct {
	pid       uint32
	cur, prev prefixState
	maxNonce  uint64 // highest regular nonce accepted
	maxTerm   uint64 // highest terminal timestamp accepted
	hasNonce  bool
	hasTerm   bool
	lastSeen  time.Time // time of the last accepted frame
	// LRU links (indices into ReplayGuard.senders, -1 for none): newer is
	// towards the most recently accepted sender.
	newer, older int32
}

// ReplayGuard applies the observer's replay rules (docs/vlp.md §7) to frames that
// opened and decoded successfully. State is keyed by the authenticated inner
// pid, not by the source address. Per pid it keeps the current and the
// previous iv_random with the highest counter accepted under each, the
// highest regular nonce and the highest terminal timestamp:
//
//   - same iv_random as current: accept only if the counter is above its
//     high-water mark;
//   - same as previous: likewise against the previous high-water mark (late
//     frames from before a prefix change);
//   - a new iv_random: accept only if the frame is fresh (regular: nonce
//     above the highest regular nonce; terminal: timestamp above the highest
//     terminal timestamp); the current prefix then becomes the previous one.
//     Its first counter is whatever arrives, 0 included.
//
// The first frame of an unknown pid is accepted. The table is bounded: a
// sender idle for IdleTimeout is dropped, and when the table is full an
// unknown pid is refused with TableFull; a live entry is never evicted to
// make room. Only accepted frames refresh a sender, so replays cannot keep
// an entry alive. Once a sender has been dropped, its old frames would be
// accepted again: the idle timeout bounds the replay window of a silent
// sender.
//
// Time is passed in by the caller and should not go backwards. Checking a
// known sender does not allocate. A ReplayGuard is safe for concurrent use:
// it has its own lock, held only for the table operation.
type ReplayGuard struct {
	mu      sync.Mutex
	idle    time.Duration
	cap     int
	index   map[uint32]int32
	senders []senderState
	free    []int32
	newest  int32
	oldest  int32
}

// NewReplayGuard returns an empty guard.
func NewReplayGuard(cfg ReplayConfig) *ReplayGuard {
	if cfg.Capacity <= 0 {
		cfg.Capacity = DefaultReplayCapacity
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultReplayIdle
	}
	hint := min(cfg.Capacity, 4096)
	return &ReplayGuard{
		idle:    cfg.IdleTimeout,
		cap:     cfg.Capacity,
		index:   make(map[uint32]int32, hint),
		senders: make([]senderState, 0, hint),
		free:    make([]int32, 0, hint),
		newest:  -1,
		oldest:  -1,
	}
}

// Len is the number of senders tracked.
func (g *ReplayGuard) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.index)
}

// Check decides whether the frame f, which arrived with iv and opened and
// decoded successfully, is accepted, and records it if so.
func (g *ReplayGuard) Check(now time.Time, iv IV, f *vlp.Frame) Verdict {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.expire(now)
	if i, ok := g.index[f.Pid]; ok {
		s := &g.senders[i]
		if !s.admit(iv, f) {
			return Replay
		}
		s.lastSeen = now
		g.unlink(i)
		g.pushNewest(i)
		return Accepted
	}
	if len(g.index) >= g.cap {
		return TableFull
	}
	var i int32
	if n := len(g.free); n > 0 {
		i = g.free[n-1]
		g.free = g.free[:n-1]
	} else {
		g.senders = append(g.senders, senderState{})
		i = int32(len(g.senders) - 1)
	}
	s := &g.senders[i]
	*s = senderState{pid: f.Pid, lastSeen: now}
	s.cur = prefixState{random: iv.Random, hw: iv.Counter, set: true}
	s.note(f)
	g.index[f.Pid] = i
	g.pushNewest(i)
	return Accepted
}

// Expire drops every sender idle for at least the idle timeout at now and
// returns how many it dropped. Check calls it; calling it from a periodic
// housekeeping tick as well keeps Len accurate between frames.
func (g *ReplayGuard) Expire(now time.Time) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.expire(now)
}

func (g *ReplayGuard) expire(now time.Time) int {
	n := 0
	for g.oldest >= 0 {
		i := g.oldest
		s := &g.senders[i]
		if now.Sub(s.lastSeen) < g.idle {
			break
		}
		g.unlink(i)
		delete(g.index, s.pid)
		*s = senderState{}
		g.free = append(g.free, i)
		n++
	}
	return n
}

// admit applies the per-prefix rules and records an accepted frame.
func (s *senderState) admit(iv IV, f *vlp.Frame) bool {
	switch {
	case s.cur.set && iv.Random == s.cur.random:
		if iv.Counter <= s.cur.hw {
			return false
		}
		s.cur.hw = iv.Counter
	case s.prev.set && iv.Random == s.prev.random:
		if iv.Counter <= s.prev.hw {
			return false
		}
		s.prev.hw = iv.Counter
	default:
		if !s.fresh(f) {
			return false
		}
		s.prev = s.cur
		s.cur = prefixState{random: iv.Random, hw: iv.Counter, set: true}
	}
	s.note(f)
	return true
}

// fresh reports whether f is newer than anything accepted from this sender.
func (s *senderState) fresh(f *vlp.Frame) bool {
	if f.IsTerminal() {
		return !s.hasTerm || f.Timestamp > s.maxTerm
	}
	return !s.hasNonce || f.Nonce > s.maxNonce
}

// note raises the nonce or terminal-timestamp high-water mark.
func (s *senderState) note(f *vlp.Frame) {
	if f.IsTerminal() {
		if !s.hasTerm || f.Timestamp > s.maxTerm {
			s.maxTerm, s.hasTerm = f.Timestamp, true
		}
		return
	}
	if !s.hasNonce || f.Nonce > s.maxNonce {
		s.maxNonce, s.hasNonce = f.Nonce, true
	}
}

func (g *ReplayGuard) unlink(i int32) {
	s := &g.senders[i]
	if s.newer >= 0 {
		g.senders[s.newer].older = s.older
	} else {
		g.newest = s.older
	}
	if s.older >= 0 {
		g.senders[s.older].newer = s.newer
	} else {
		g.oldest = s.newer
	}
	s.newer, s.older = -1, -1
}

func (g *ReplayGuard) pushNewest(i int32) {
	s := &g.senders[i]
	s.newer = -1
	s.older = g.newest
	if g.newest >= 0 {
		g.senders[g.newest].newer = i
	} else {
		g.oldest = i
	}
	g.newest = i
}
