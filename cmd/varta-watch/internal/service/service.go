package service

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/budget"
	"github.com/varta-go/varta/cmd/varta-watch/internal/identity"
	"github.com/varta-go/varta/cmd/varta-watch/internal/policy"
	"github.com/varta-go/varta/cmd/varta-watch/internal/recovery"
	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/pkg/audit"
)

// DefaultMaxServices is the default of --prom-max-services.
const DefaultMaxServices = 1000

// Overflow is the service label of everything beyond MaxServices.
const Overflow = policy.OverflowService

// Options configure a Registry.
type Options struct {
	// PolicyPath is --policy-file; "" runs without a policy.
	PolicyPath string
	// Policy, when set, is PolicyPath already loaded (New does not read
	// the file again).
	Policy *policy.Policy
	// Threshold is the command line's silence threshold.
	Threshold time.Duration
	// RetryInterval is --recovery-retry-ms: how often a recovery is tried
	// again for a silent agent whose rule has no restart budget, or that
	// matches no rule. 0 never retries (one recovery per silence run).
	RetryInterval time.Duration
	// MinRetry spaces retries at least this much.
	MinRetry time.Duration
	// CommandLineRecovery is true when --recovery-exec or
	// --recovery-exec-file gives a program: a rule without recovery uses
	// it. Without one such a rule recovers nothing (and spends no budget).
	CommandLineRecovery bool
	// MaxServices caps the distinct service label values; 0 means
	// DefaultMaxServices.
	MaxServices int
	// Resolver reads identities from /proc.
	Resolver identity.Resolver
	// Logger receives reload results, give-ups and the rate-limited stall
	// and decision lines. nil discards them.
	Logger *slog.Logger
	// OnGaveUp is called (on the recovery goroutine) when a service gives
	// up: the observer writes the events-file line.
	OnGaveUp func(GaveUp)
}

// GaveUp describes a service that has just given up.
type GaveUp struct {
	Service string
	Pid     uint32
	Ident   *identity.Info
	Now     int64 // stall clock ns
	Until   int64 // 0: permanent
}

// Counters are the registry's own counts.
type Counters struct {
	ReloadOK, ReloadFailed atomic.Uint64
	// Overflow counts stalls and recovery records attributed to the
	// overflow service because MaxServices distinct names were taken.
	Overflow atomic.Uint64
}

// Registry names agents as services and keeps what the daemon knows per
// service: the policy in force, the restart budgets, per-service counts.
// It implements recovery.Planner. Safe for concurrent use.
type Registry struct {
	opts Options
	log  *slog.Logger
	pol  atomic.Pointer[policy.Policy]
	book *budget.Book
	C    Counters
	IDC  identity.Counters

	mu       sync.Mutex
	services map[string]*svcStats // admitted service names (≤ MaxServices, plus Overflow)
}

type svcStats struct {
	stalls   uint64
	outcomes [stats.NumOutcomes]uint64
}

// New loads the policy file (if any) and returns a Registry. A policy
// error is a configuration error (exit 2).
func New(opts Options) (*Registry, error) {
	if opts.MaxServices == 0 {
		opts.MaxServices = DefaultMaxServices
	}
	if opts.MaxServices < 0 {
		return nil, fmt.Errorf("prom max services %d: must be positive", opts.MaxServices)
	}
	if opts.Threshold <= 0 {
		return nil, errors.New("service registry: threshold must be positive")
	}
	if opts.RetryInterval < 0 {
		return nil, fmt.Errorf("recovery retry %v: must not be negative", opts.RetryInterval)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Registry{
		opts:     opts,
		log:      log,
		book:     budget.NewBook(),
		services: make(map[string]*svcStats),
	}
	r.opts.Resolver.C = &r.IDC
	if opts.Policy != nil {
		r.pol.Store(opts.Policy)
	} else if opts.PolicyPath != "" {
		p, err := policy.Load(opts.PolicyPath)
		if err != nil {
			return nil, err
		}
		r.pol.Store(p)
	}
	return r, nil
}

// Policy returns the policy in force (nil without a policy file).
func (r *Registry) Policy() *policy.Policy { return r.pol.Load() }

// Book returns the restart budgets.
func (r *Registry) Book() *budget.Book { return r.book }

// Reload reads the policy file again. On error the old policy stays in
// force, and the error is logged, counted and returned. Budgets of services
// that keep their name survive; the others are dropped.
func (r *Registry) Reload() error {
	if r.opts.PolicyPath == "" {
		return nil
	}
	p, err := policy.Load(r.opts.PolicyPath)
	if err != nil {
		r.C.ReloadFailed.Add(1)
		r.log.Error("policy reload failed; the previous policy stays in force", "err", err)
		return err
	}
	r.pol.Store(p)
	r.book.Retain(p.HasService)
	r.C.ReloadOK.Add(1)
	r.log.Info("policy reloaded", "path", r.opts.PolicyPath, "rules", len(p.Rules))
	return nil
}

// Identify resolves pid's identity from /proc (a kernel-attested agent;
// uid from its credentials) and classifies it. It reads /proc: call it off
// the receive path.
func (r *Registry) Identify(pid, uid uint32) *identity.Info {
	return r.Classify(r.opts.Resolver.Resolve(pid, uid))
}

// Classify returns info naming its service under the policy in force (the
// same pointer when nothing changed).
func (r *Registry) Classify(info *identity.Info) *identity.Info {
	if info == nil {
		info = identity.None
	}
	p := r.pol.Load()
	rule := p.Match(info)
	svc := p.Service(info, rule)
	r.admit(svc)
	if svc == info.Service && rule == info.Rule {
		return info
	}
	return info.WithService(svc, rule)
}

// Threshold returns the silence threshold of an agent: its rule's, or the
// command line's.
func (r *Registry) Threshold(info *identity.Info) time.Duration {
	if info != nil {
		if rule := r.pol.Load().Rule(info.Rule); rule != nil && rule.Threshold > 0 {
			return rule.Threshold
		}
	}
	return r.opts.Threshold
}

// Thresholds returns the distinct thresholds in force, the command line's
// first.
func (r *Registry) Thresholds() []time.Duration {
	out := []time.Duration{r.opts.Threshold}
	for _, d := range r.pol.Load().Thresholds() {
		if d != r.opts.Threshold {
			out = append(out, d)
		}
	}
	return out
}

// admit makes svc a label value if there is room.
func (r *Registry) admit(svc string) {
	r.mu.Lock()
	if _, ok := r.services[svc]; !ok && len(r.services) < r.opts.MaxServices {
		r.services[svc] = &svcStats{}
	}
	r.mu.Unlock()
}

// Label returns the label value of svc: itself if admitted, else Overflow.
func (r *Registry) Label(svc string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.services[svc]; ok {
		return svc
	}
	return Overflow
}

// statsLocked returns svc's counters, or the overflow's (counted).
func (r *Registry) statsLocked(svc string) *svcStats {
	if s, ok := r.services[svc]; ok {
		return s
	}
	r.C.Overflow.Add(1)
	s, ok := r.services[Overflow]
	if !ok {
		s = &svcStats{}
		r.services[Overflow] = s
	}
	return s
}

func serviceOf(info *identity.Info) string {
	if info == nil || info.Service == "" {
		return identity.Unknown
	}
	return info.Service
}

// NoteStall counts a surfaced stall of an agent and interrupts its
// service's healthy period.
func (r *Registry) NoteStall(pid uint32, info *identity.Info, now int64) {
	svc := serviceOf(info)
	r.mu.Lock()
	r.statsLocked(svc).stalls++
	r.mu.Unlock()
	if p := r.pol.Load(); p.HasService(svc) {
		r.book.Stall(svc, p.Budget(svc), now)
	}
}

// Plan implements recovery.Planner (docs/services.md, "Recovery per rule
// and placeholders"): the rule's recovery (none, or its argument list with
// placeholders expanded), then the service's restart budget.
func (r *Registry) Plan(s recovery.Stall, now uint64) recovery.Plan {
	info := s.Ident
	if info == nil {
		info = identity.None
	}
	p := r.pol.Load()
	ri := p.Match(info)
	rule := p.Rule(ri)
	svc := p.Service(info, ri)
	if rule == nil {
		return recovery.Plan{Service: svc}
	}
	if info.Service != svc || info.Rule != ri {
		info = info.WithService(svc, ri)
	}
	plan := recovery.Plan{Service: svc}
	if rule.Recovery.None || (!rule.Recovery.Set && !r.opts.CommandLineRecovery) {
		plan.Skip = true
		return plan
	}
	if rule.Recovery.Set {
		argv, err := policy.Expand(rule.Recovery.Argv, s.Pid, info)
		if err != nil {
			plan.Refuse = audit.ReasonIdentityUnsafe
			r.log.Error("recovery refused: unsafe identity", "pid", s.Pid, "service", svc, "unit", info.Unit, "comm", info.Comm, "err", err)
			return plan
		}
		plan.Argv, plan.Source = argv, p.Path+"#"+rule.Name
	}
	d := r.book.Decide(svc, rule.Budget, int64(now))
	switch d.Verdict {
	case budget.RefuseBackoff:
		plan.Refuse = audit.ReasonBackoff
		plan.Argv = nil
		return plan
	case budget.RefuseGaveUp:
		plan.Refuse = audit.ReasonGaveUp
		plan.Argv = nil
		return plan
	}
	if d.GaveUp {
		until := "never"
		if g := rule.Budget.GiveUp; !g.Never {
			until = g.RetryAfter.String()
		}
		r.log.Error("service gave up: too many recoveries; stalls are refused until retry_after passes or it stays healthy",
			"service", svc, "pid", s.Pid, "unit", info.Unit, "comm", info.Comm,
			"recoveries", rule.Budget.GiveUp.After, "within", rule.Budget.GiveUp.Within.String(), "retry_after", until)
		if r.opts.OnGaveUp != nil {
			g := GaveUp{Service: svc, Pid: s.Pid, Ident: info, Now: int64(now)}
			if !rule.Budget.GiveUp.Never {
				g.Until = int64(now) + int64(rule.Budget.GiveUp.RetryAfter)
			}
			r.opts.OnGaveUp(g)
		}
	}
	return plan
}

// RetryAt returns when a recovery should be tried again for an agent that
// is still silent after a decision at now, and false for never: the
// service's budget when its rule has one, else RetryInterval (0: never).
func (r *Registry) RetryAt(info *identity.Info, now int64) (int64, bool) {
	if info == nil {
		info = identity.None
	}
	p := r.pol.Load()
	ri := p.Match(info)
	minNext := now + int64(max(r.opts.MinRetry, time.Millisecond))
	if rule := p.Rule(ri); rule != nil && !rule.Recovery.None && (rule.Budget.Backoff.Initial > 0 || rule.Budget.GiveUp.After > 0) {
		at, ok := r.book.NextAllowed(rule.Name, rule.Budget, now)
		if !ok {
			return 0, false
		}
		return max(at, minNext), true
	} else if rule != nil && rule.Recovery.None {
		return 0, false
	}
	if r.opts.RetryInterval <= 0 {
		return 0, false
	}
	return max(now+int64(r.opts.RetryInterval), minNext), true
}

// Record counts a recovery record of service svc under outcome o
// (varta_service_recoveries_total).
func (r *Registry) Record(svc string, o stats.Outcome) {
	if o >= stats.NumOutcomes {
		return
	}
	if svc == "" {
		svc = identity.Unknown
	}
	r.mu.Lock()
	r.statsLocked(svc).outcomes[o]++
	r.mu.Unlock()
}

// Status is a read-only view of one service.
type Status struct {
	Service string
	// Rule is true when a policy rule has this name.
	Rule bool
	// Budget is the restart budget's state (zero Phase ok without one).
	Budget budget.Status
	Stalls uint64
	// Outcomes counts recovery records by stats.Outcome.
	Outcomes [stats.NumOutcomes]uint64
}

// Services returns every admitted service (and the overflow, if used) at
// now (stall clock ns), sorted by name: the view the metrics exporter and
// the control socket read.
func (r *Registry) Services(now int64) []Status {
	p := r.pol.Load()
	byName := map[string]budget.Status{}
	for _, b := range r.book.Snapshot(now, p.Budget) {
		byName[b.Service] = b
	}
	r.mu.Lock()
	out := make([]Status, 0, len(r.services))
	for name, s := range r.services {
		out = append(out, Status{Service: name, Rule: p.HasService(name), Budget: byName[name], Stalls: s.stalls, Outcomes: s.outcomes})
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Service < out[j].Service })
	return out
}

// Agent states of varta_service_agents: the first four indexed like
// vlp.Status (ok, degraded, critical, stalled), then snoozed, a stalled
// agent that an operator's snooze matches (docs/control.md).
var AgentStates = [5]string{"ok", "degraded", "critical", "stalled", "snoozed"}

// StateSnoozed is the index of "snoozed" in AgentStates.
const StateSnoozed = 4

// ExportedOutcomes are the outcome label values of
// varta_service_recoveries_total: what a service's operator acts on. The
// global varta_recovery_outcomes_total keeps every outcome.
var ExportedOutcomes = []stats.Outcome{
	stats.OutcomeSpawned, stats.Refusal(audit.ReasonSpawnFailed), stats.OutcomeReapedZero,
	stats.OutcomeReapedNonzero, stats.OutcomeKilled, stats.Refusal(audit.ReasonBackoff),
	stats.Refusal(audit.ReasonGaveUp), stats.Refusal(audit.ReasonIdentityUnsafe),
}

// View is one service as the metrics exporter sees it.
type View struct {
	Service  string
	Agents   [len(AgentStates)]uint64 // by AgentStates
	Stalls   uint64
	Outcomes [stats.NumOutcomes]uint64
	GaveUp   bool
}

// Views returns every service label value at now with its agents counted
// by state; eachAgent walks the tracked agents (identity and status index
// into AgentStates; a status outside it is not counted).
func (r *Registry) Views(now int64, eachAgent func(fn func(info *identity.Info, state int))) []View {
	sts := r.Services(now)
	idx := make(map[string]int, len(sts))
	out := make([]View, len(sts), len(sts)+1)
	for i, s := range sts {
		idx[s.Service] = i
		out[i] = View{Service: s.Service, Stalls: s.Stalls, Outcomes: s.Outcomes, GaveUp: s.Budget.Phase == budget.PhaseGaveUp}
	}
	if eachAgent != nil {
		eachAgent(func(info *identity.Info, state int) {
			if state < 0 || state >= len(AgentStates) {
				return
			}
			i, ok := idx[serviceOf(info)] // every admitted service is in idx
			if !ok {
				if i, ok = idx[Overflow]; !ok {
					i = len(out)
					idx[Overflow] = i
					out = append(out, View{Service: Overflow})
				}
			}
			out[i].Agents[state]++
		})
	}
	return out
}
