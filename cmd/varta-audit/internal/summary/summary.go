package summary

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/varta-go/varta/pkg/audit"
)

// Agent holds the figures of one agent pid.
type Agent struct {
	Pid uint32 `json:"agent_pid"`
	// Stalls acted on: every recovery decision recorded for the pid (a
	// spawn or a refusal).
	Stalls        uint64            `json:"stalls"`
	Spawns        uint64            `json:"spawns"`
	ReapedZero    uint64            `json:"reaped_exit_zero"`
	ReapedNonzero uint64            `json:"reaped_exit_nonzero"`
	Signalled     uint64            `json:"reaped_by_signal"`
	Killed        uint64            `json:"killed"`
	ReapFailed    uint64            `json:"reap_failed"`
	Refusals      map[string]uint64 `json:"refusals"`
	// Recovery duration (duration_ns of complete records), nearest rank.
	P50 time.Duration `json:"duration_p50_ns"`
	P95 time.Duration `json:"duration_p95_ns"`
	Max time.Duration `json:"duration_max_ns"`

	durations []uint64
}

// Timed returns the number of the agent's recoveries with a duration (every
// complete record except reap_failed): P50, P95 and Max are zero and
// meaningless when it is 0.
func (a *Agent) Timed() uint64 { return a.ReapedZero + a.ReapedNonzero + a.Signalled + a.Killed }

// Refused returns the number of refusals of the agent.
func (a *Agent) Refused() uint64 {
	var n uint64
	for _, c := range a.Refusals {
		n += c
	}
	return n
}

// Control counts the operator actions of one kind by one uid.
type Control struct {
	Action string `json:"action"`
	UID    uint32 `json:"uid"`
	Count  uint64 `json:"count"`
	// LastMs is the wall-clock time of the last one (ms since the epoch).
	LastMs int64 `json:"last_wallclock_ms"`
}

// Service holds the figures of one service of varta-watch's policy file
// (docs/services.md): spawns started from its rule (source PATH#NAME) and
// the refusals that name it (reason backoff:NAME, gave_up:NAME,
// identity_unsafe:NAME).
type Service struct {
	Name           string `json:"service"`
	Spawns         uint64 `json:"spawns"`
	Backoff        uint64 `json:"refused_backoff"`
	GaveUp         uint64 `json:"refused_gave_up"`
	IdentityUnsafe uint64 `json:"refused_identity_unsafe"`
}

// ServiceOfReason splits a restart-budget or placeholder refusal of the
// policy file (backoff:NAME, gave_up:NAME, identity_unsafe:NAME; pkg/audit's
// reason table) into its reason and service; ok is false for every other
// reason.
func ServiceOfReason(column string) (reason audit.Reason, service string, ok bool) {
	r, svc, ok := audit.ParseReason(column)
	switch {
	case !ok || svc == "":
		return audit.ReasonNone, "", false
	case r == audit.ReasonBackoff, r == audit.ReasonGaveUp, r == audit.ReasonIdentityUnsafe:
		return r, svc, true
	}
	return audit.ReasonNone, "", false
}

// ServiceOfSource returns the rule name of a spawn source PATH#NAME.
func ServiceOfSource(source string) (string, bool) {
	i := strings.LastIndexByte(source, '#')
	if i <= 0 || i == len(source)-1 || strings.ContainsAny(source[i+1:], "/ ") {
		return "", false
	}
	return source[i+1:], true
}

// Totals are the figures over the whole log.
type Totals struct {
	Records   uint64 `json:"records"`
	Stalls    uint64 `json:"stalls"`
	Spawns    uint64 `json:"spawns"`
	Completes uint64 `json:"completes"`
	Refusals  uint64 `json:"refusals"`
	// Controls counts control records (operator actions); omitted from
	// JSON when there is none, so a plain v2 log summarizes as before.
	Controls    uint64 `json:"controls,omitempty"`
	Boots       uint64 `json:"boots"`
	Restarts    uint64 `json:"restarts"`
	DaemonPids  int    `json:"daemon_pids"`
	Agents      int    `json:"agents"`
	LostRecords uint64 `json:"lost_records"`
}

// Summary is the result of Builder.Finish.
type Summary struct {
	Path string `json:"path"`
	// FirstMs and LastMs are the wall-clock span of the records (ms since
	// the epoch); 0 when there is none.
	FirstMs int64                       `json:"first_wallclock_ms"`
	LastMs  int64                       `json:"last_wallclock_ms"`
	Agents  []*Agent                    `json:"agents"`
	Boots   map[audit.BootReason]uint64 `json:"boots"`
	// Controls are the operator actions (control records) by action and
	// uid, in file order of their first appearance; nil without any.
	Controls []*Control `json:"controls,omitempty"`
	// Services are the policy services by name; nil in a log written
	// without a policy file.
	Services []*Service `json:"services,omitempty"`
	Totals   Totals     `json:"totals"`
	// Integrity is the verdict of the verification done in the same pass.
	Integrity audit.Verdict `json:"integrity"`
	Failures  []string      `json:"failures"`
	Warnings  []string      `json:"warnings"`
	Files     int           `json:"files"`
}

// Builder accumulates records in file order.
type Builder struct {
	s        Summary
	agents   map[uint32]*Agent
	daemons  map[uint32]struct{}
	controls map[controlKey]*Control
	services map[string]*Service
}

func (b *Builder) service(name string) *Service {
	if b.services == nil {
		b.services = map[string]*Service{}
	}
	sv := b.services[name]
	if sv == nil {
		sv = &Service{Name: name}
		b.services[name] = sv
	}
	return sv
}

type controlKey struct {
	action string
	uid    uint32
}

// NewBuilder starts a summary of the log at path.
func NewBuilder(path string) *Builder {
	return &Builder{
		s:       Summary{Path: path, Boots: map[audit.BootReason]uint64{}, Agents: []*Agent{}},
		agents:  map[uint32]*Agent{},
		daemons: map[uint32]struct{}{},
	}
}

func (b *Builder) agent(pid uint32) *Agent {
	a := b.agents[pid]
	if a == nil {
		a = &Agent{Pid: pid, Refusals: map[string]uint64{}}
		b.agents[pid] = a
	}
	return a
}

// Add accounts for one record.
func (b *Builder) Add(r *audit.Record) {
	s := &b.s
	s.Totals.Records++
	if ms := r.WallclockMs(); s.FirstMs == 0 || ms < s.FirstMs {
		s.FirstMs = ms
	}
	if ms := r.WallclockMs(); ms > s.LastMs {
		s.LastMs = ms
	}
	switch r.Kind {
	case audit.KindBoot:
		s.Totals.Boots++
		s.Boots[r.Boot.Reason]++
		b.daemons[r.Boot.DaemonPid] = struct{}{}
		switch r.Boot.Reason {
		case audit.BootFresh, audit.BootRotation:
		default:
			s.Totals.Restarts++
		}
	case audit.KindSpawn:
		a := b.agent(r.Spawn.AgentPid)
		a.Spawns++
		a.Stalls++
		if name, ok := ServiceOfSource(r.Spawn.Source); ok {
			b.service(name).Spawns++
		}
		s.Totals.Spawns++
		s.Totals.Stalls++
	case audit.KindComplete:
		c := &r.Complete
		a := b.agent(c.AgentPid)
		s.Totals.Completes++
		switch {
		case c.Outcome == audit.OutcomeKilled:
			a.Killed++
		case c.Outcome == audit.OutcomeReapFailed:
			a.ReapFailed++
		case c.Signal > 0:
			a.Signalled++
		case c.ExitCode == 0:
			a.ReapedZero++
		default:
			a.ReapedNonzero++
		}
		if c.Outcome != audit.OutcomeReapFailed {
			a.durations = append(a.durations, c.DurationNs)
		}
	case audit.KindRefused:
		a := b.agent(r.Refused.AgentPid)
		a.Refusals[r.Refused.Reason]++
		a.Stalls++
		if base, name, ok := ServiceOfReason(r.Refused.Reason); ok {
			sv := b.service(name)
			switch base {
			case audit.ReasonBackoff:
				sv.Backoff++
			case audit.ReasonGaveUp:
				sv.GaveUp++
			default:
				sv.IdentityUnsafe++
			}
		}
		s.Totals.Refusals++
		s.Totals.Stalls++
	case audit.KindControl:
		x := &r.Control
		s.Totals.Controls++
		k := controlKey{x.Action, x.UID}
		c := b.controls[k]
		if c == nil {
			if b.controls == nil {
				b.controls = map[controlKey]*Control{}
			}
			c = &Control{Action: x.Action, UID: x.UID}
			b.controls[k] = c
			s.Controls = append(s.Controls, c)
		}
		c.Count++
		c.LastMs = max(c.LastMs, x.WallclockMs)
	}
}

// Finish computes the percentiles and attaches the verification result.
func (b *Builder) Finish(rep *audit.Report) *Summary {
	s := &b.s
	for _, a := range b.agents {
		slices.Sort(a.durations)
		a.P50 = rank(a.durations, 0.50)
		a.P95 = rank(a.durations, 0.95)
		a.Max = rank(a.durations, 1)
		a.durations = nil
		s.Agents = append(s.Agents, a)
	}
	slices.SortFunc(s.Agents, func(x, y *Agent) int { return int(int64(x.Pid) - int64(y.Pid)) })
	for _, sv := range b.services {
		s.Services = append(s.Services, sv)
	}
	slices.SortFunc(s.Services, func(x, y *Service) int { return strings.Compare(x.Name, y.Name) })
	s.Totals.Agents = len(s.Agents)
	s.Totals.DaemonPids = len(b.daemons)
	if rep != nil {
		s.Integrity, s.Failures, s.Warnings = rep.Verdict, rep.Failures, rep.Warnings
		s.Totals.LostRecords = rep.LostRecords
		s.Files = len(rep.Files)
	}
	return s
}

// rank returns the nearest-rank percentile p (0 < p ≤ 1) of sorted ns.
func rank(sorted []uint64, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	v := sorted[i]
	if v > math.MaxInt64 {
		v = math.MaxInt64
	}
	return time.Duration(v)
}
