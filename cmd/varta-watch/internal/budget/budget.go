package budget

import (
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/varta-go/varta/pkg/audit"
)

// Backoff spaces the recoveries of one service (docs/services.md, "The restart budget"). The
// zero value (Initial 0) applies no backoff.
type Backoff struct {
	// Initial is the spacing after the first recovery of a sequence.
	Initial time.Duration
	// Max caps the spacing.
	Max time.Duration
	// Factor multiplies the spacing after every further recovery (≥ 1).
	Factor float64
	// ResetAfter: a service with no stall and no recovery decision for
	// this long starts a new sequence (and leaves gave_up). 0 = never.
	ResetAfter time.Duration
}

// GiveUp stops recovering a service that keeps failing. The zero value
// (After 0) never gives up.
type GiveUp struct {
	// After recoveries within Within, the service gives up.
	After  int
	Within time.Duration
	// RetryAfter ends the gave_up state (the budget starts over). Never
	// makes it permanent (only an explicit "retry_after: never" sets it).
	RetryAfter time.Duration
	Never      bool
}

// Config is one service's budget.
type Config struct {
	Backoff Backoff
	GiveUp  GiveUp
}

// Validate checks the bounds a policy file must respect.
func (c Config) Validate() error {
	b, g := c.Backoff, c.GiveUp
	switch {
	case b.Initial < 0 || b.Max < 0 || b.ResetAfter < 0:
		return fmt.Errorf("backoff durations must not be negative")
	case b.Initial > 0 && b.Max < b.Initial:
		return fmt.Errorf("backoff max %v is shorter than initial %v", b.Max, b.Initial)
	case b.Initial > 0 && (b.Factor < 1 || math.IsNaN(b.Factor) || math.IsInf(b.Factor, 0)):
		return fmt.Errorf("backoff factor %v must be a finite number of at least 1", b.Factor)
	case g.After < 0:
		return fmt.Errorf("give_up after %d must not be negative", g.After)
	case g.After > 0 && g.Within <= 0:
		return fmt.Errorf("give_up within must be positive")
	case g.After > 0 && !g.Never && g.RetryAfter <= 0:
		return fmt.Errorf("give_up retry_after must be positive, or never")
	}
	return nil
}

// Delay is the backoff spacing after the n-th recovery of a sequence
// (n ≥ 1): Initial × Factor^(n−1), capped at Max.
func (b Backoff) Delay(n int) time.Duration {
	if b.Initial <= 0 || n < 1 {
		return 0
	}
	d := float64(b.Initial) * math.Pow(b.Factor, float64(n-1))
	if d >= float64(b.Max) || math.IsInf(d, 0) || math.IsNaN(d) {
		return b.Max
	}
	return time.Duration(d)
}

// Verdict is the budget's answer to "may service S be recovered now?".
type Verdict uint8

// Verdicts.
const (
	Allow Verdict = iota
	RefuseBackoff
	RefuseGaveUp
)

// String returns the verdict's audit reason ("allow" for Allow).
func (v Verdict) String() string {
	switch v {
	case RefuseBackoff:
		return audit.ReasonBackoff.String()
	case RefuseGaveUp:
		return audit.ReasonGaveUp.String()
	}
	return "allow"
}

// Decision is the result of Book.Decide.
type Decision struct {
	Verdict Verdict
	// Until is when the refusal ends (stall clock ns): the end of the
	// backoff window, or of gave_up (0 with Never).
	Until int64
	// GaveUp is true when this (allowed) recovery exhausted the budget:
	// the service has just entered gave_up, and the caller must say so
	// loudly.
	GaveUp bool
	// Attempt counts the recoveries of the current sequence, this one
	// included (Allow only).
	Attempt int
}

// Phase is a service's budget state.
type Phase uint8

// Phases.
const (
	PhaseOK Phase = iota
	PhaseBackoff
	PhaseGaveUp
)

// String returns the phase's name.
func (p Phase) String() string {
	switch p {
	case PhaseBackoff:
		return "backoff"
	case PhaseGaveUp:
		return "gave_up"
	}
	return "ok"
}

// state is one service's budget.
type state struct {
	seq          int     // recoveries in the current backoff sequence
	lastRecovery int64   // when the last recovery was allowed
	lastTrouble  int64   // last stall or decision
	troubled     bool    // lastTrouble is set
	recent       []int64 // allowed recoveries within GiveUp.Within, oldest first
	gaveUp       bool
	gaveUpAt     int64
	retryAt      int64 // 0 with GiveUp.Never
	total        uint64
	gaveUps      uint64
}

// Book holds the budgets of every service, keyed by service name so that
// they survive pid changes and policy reloads that keep the name. Times
// are the observer's stall clock in ns, passed in by the caller. Safe for
// concurrent use (the control socket reads Snapshot while the control loop
// decides).
type Book struct {
	mu sync.Mutex
	m  map[string]*state
}

// NewBook returns an empty book.
func NewBook() *Book { return &Book{m: make(map[string]*state)} }

func (b *Book) get(service string) *state {
	s := b.m[service]
	if s == nil {
		s = &state{}
		b.m[service] = s
	}
	return s
}

// expire applies the transitions time alone makes: a healthy period of
// ResetAfter starts over, and so does the end of retry_after.
func (s *state) expire(cfg Config, now int64) {
	if s.troubled && cfg.Backoff.ResetAfter > 0 && now-s.lastTrouble >= int64(cfg.Backoff.ResetAfter) {
		s.startOver()
		return
	}
	if s.gaveUp && !cfg.GiveUp.Never && s.retryAt != 0 && now >= s.retryAt {
		s.startOver()
	}
}

func (s *state) startOver() {
	s.seq, s.recent, s.gaveUp, s.retryAt, s.gaveUpAt = 0, s.recent[:0], false, 0, 0
}

// Stall notes a stall of service at now: it interrupts the healthy period
// that resets the budget.
func (b *Book) Stall(service string, cfg Config, now int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.get(service)
	s.expire(cfg, now)
	s.lastTrouble, s.troubled = now, true
}

// Decide answers whether service may be recovered at now under cfg. An
// Allow is a commitment: the caller recovers (or tries to), and the
// recovery counts against the budget whatever its outcome.
func (b *Book) Decide(service string, cfg Config, now int64) Decision {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.get(service)
	s.expire(cfg, now)
	s.lastTrouble, s.troubled = now, true
	if s.gaveUp {
		return Decision{Verdict: RefuseGaveUp, Until: s.retryAt}
	}
	if s.seq > 0 {
		if until := s.lastRecovery + int64(cfg.Backoff.Delay(s.seq)); now < until {
			return Decision{Verdict: RefuseBackoff, Until: until}
		}
	}
	s.seq++
	s.total++
	s.lastRecovery = now
	d := Decision{Verdict: Allow, Attempt: s.seq}
	if g := cfg.GiveUp; g.After > 0 {
		keep := s.recent[:0]
		for _, t := range s.recent {
			if now-t < int64(g.Within) {
				keep = append(keep, t)
			}
		}
		s.recent = append(keep, now)
		if len(s.recent) >= g.After {
			s.gaveUp, s.gaveUpAt = true, now
			s.gaveUps++
			s.retryAt = 0
			if !g.Never {
				s.retryAt = now + int64(g.RetryAfter)
			}
			d.GaveUp = true
		}
	}
	return d
}

// NextAllowed returns the earliest time service may be recovered again
// under cfg (now when it may be recovered at once) and false when never
// (a permanent give-up).
func (b *Book) NextAllowed(service string, cfg Config, now int64) (int64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.m[service]
	if !ok {
		return now, true
	}
	s.expire(cfg, now)
	switch {
	case s.gaveUp && s.retryAt == 0:
		return 0, false
	case s.gaveUp:
		return max(now, s.retryAt), true
	case s.seq > 0:
		return max(now, s.lastRecovery+int64(cfg.Backoff.Delay(s.seq))), true
	}
	return now, true
}

// Status is a read-only view of one service's budget.
type Status struct {
	Service string
	Phase   Phase
	// Attempts counts recoveries of the current sequence.
	Attempts int
	// LastRecovery is when the last recovery was allowed (0 = never).
	LastRecovery int64
	// BackoffUntil is the end of the backoff window (0 when none).
	BackoffUntil int64
	// GaveUpAt and GaveUpUntil describe the gave_up state (GaveUpUntil 0
	// while gave up: permanent).
	GaveUpAt, GaveUpUntil int64
	// Recoveries and GaveUps are totals since the daemon started.
	Recoveries, GaveUps uint64
}

// Snapshot returns every service's state at now, sorted by name. cfg
// returns the configuration of a service (services without one have none:
// the zero Config).
func (b *Book) Snapshot(now int64, cfg func(service string) Config) []Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Status, 0, len(b.m))
	for name, s := range b.m {
		c := cfg(name)
		s.expire(c, now)
		st := Status{
			Service: name, Attempts: s.seq, LastRecovery: s.lastRecovery,
			Recoveries: s.total, GaveUps: s.gaveUps,
		}
		switch {
		case s.gaveUp:
			st.Phase, st.GaveUpAt, st.GaveUpUntil = PhaseGaveUp, s.gaveUpAt, s.retryAt
		case s.seq > 0:
			if until := s.lastRecovery + int64(c.Backoff.Delay(s.seq)); now < until {
				st.Phase, st.BackoffUntil = PhaseBackoff, until
			}
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Service < out[j].Service })
	return out
}

// Retain drops the budgets of services keep rejects (after a policy
// reload removed their rule).
func (b *Book) Retain(keep func(service string) bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for name := range b.m {
		if !keep(name) {
			delete(b.m, name)
		}
	}
}
