package recovery

import (
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/identity"
	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/pkg/vlp"
)

// Stall is one surfaced stall as the observer hands it to the runner.
type Stall struct {
	Pid uint32
	// Generation is the process start time (field 22 of /proc/<pid>/stat);
	// 0 means unknown (a UDP pid is a claim, nothing is read from /proc).
	// An unknown generation matches every generation of the same pid.
	Generation     uint64
	Origin         vlp.Origin
	CrossNamespace bool
	// ObserverNs is the observer clock when the stall was surfaced. Audit
	// records carry the time of the decision, not this value.
	ObserverNs uint64
	// Ident is the agent's identity (nil: unknown) and Service its service
	// name when the stall was surfaced, carried into every record; a
	// Planner may name another service (after a policy reload).
	Ident   *identity.Info
	Service string
}

// Verdict is the Verifier's answer when a stall is re-checked right before
// the decision.
type Verdict uint8

// Verdicts. The zero value is VerdictUnverifiable so that an unset or
// unknown verdict fails closed.
const (
	VerdictUnverifiable Verdict = iota // identity can no longer be read
	VerdictFresh                       // still the same, still silent process
	VerdictResumed                     // it beat again since the stall was surfaced
	VerdictRecycled                    // the pid now belongs to another process
)

// String returns the verdict's name.
func (v Verdict) String() string {
	switch v {
	case VerdictFresh:
		return "fresh"
	case VerdictResumed:
		return "resumed"
	case VerdictRecycled:
		return "recycled"
	case VerdictUnverifiable:
		return "unverifiable"
	}
	return "unknown"
}

// Verifier re-checks a stall right before the runner decides it. The
// observer implements it on top of the tracker and /proc. It is called on
// the runner's goroutine.
type Verifier interface {
	Verify(s Stall) Verdict
}

// Audit reasons of refused records (docs/recovery.md §3).
const (
	ReasonCrossNamespace           = "cross_namespace_agent"
	ReasonUnauthenticatedTransport = "unauthenticated_transport"
	ReasonSocketModeOnly           = "socket_mode_only"
	ReasonDebounced                = "debounced"
	ReasonOutstandingInFlight      = "outstanding_in_flight"
	ReasonOutstandingCapacity      = "outstanding_capacity"
	ReasonDebounceCapacity         = "debounce_capacity"
	ReasonSpawnFailed              = "spawn_failed"
	ReasonAgentResumed             = "skipped_agent_resumed"
	ReasonPidRecycled              = "skipped_pid_recycled"
	ReasonStallUnverifiable        = "skipped_stall_unverifiable"
	// ReasonShutdown: the stall was still queued for a decision when the
	// daemon shut down.
	ReasonShutdown = "shutdown"
)

// Plan is the service layer's say on a stall that passed every gate
// (docs/services.md): a refusal, nothing at all, or the argument list to
// run instead of the command line's.
type Plan struct {
	// Refuse, when not empty, refuses the recovery with this audit reason,
	// counted under Outcome.
	Refuse  string
	Outcome stats.Outcome
	// Skip drops the stall without a record (the agent's rule says
	// recovery: none).
	Skip bool
	// Argv, when not nil, is the expanded program and arguments to run;
	// Source names where they came from (spawn record).
	Argv   []string
	Source string
	// Service is the agent's service name, carried into the records.
	Service string
}

// Planner plans the recovery of stalls that passed every gate. It is
// called on the runner's goroutine; a Plan that does not refuse is a
// commitment (a restart budget counts it).
type Planner interface {
	Plan(s Stall, now uint64) Plan
}

// Outcomes of complete records.
const (
	CompleteReaped     = "reaped"
	CompleteKilled     = "killed"
	CompleteReapFailed = "reap_failed"
)

// SpawnRecord describes a child that was started.
type SpawnRecord struct {
	ObserverNs  uint64
	AgentPid    uint32
	ChildPid    int
	Program     string // as configured, not the resolved path
	Source      string // "inline" or the command file's path
	TemplateLen int    // byte length of the space-joined argv after substitution
	Service     string // from the Plan; "" without a planner
}

// CompleteRecord describes a child that is gone (or given up on).
type CompleteRecord struct {
	ObserverNs uint64
	AgentPid   uint32
	ChildPid   int
	Outcome    string // CompleteReaped, CompleteKilled or CompleteReapFailed
	ExitCode   int    // -1 = none
	Signal     int    // -1 = none
	Duration   time.Duration
	StdoutLen  int
	StderrLen  int
	Truncated  bool
	Service    string // from the Plan of the spawn
}

// RefusedRecord describes a decision that did not spawn.
type RefusedRecord struct {
	ObserverNs uint64
	AgentPid   uint32
	Reason     string
	Service    string        // the stall's, or the Plan's
	Outcome    stats.Outcome // the outcome it was counted under
}

// Auditor receives every decision. The observer implements it on top of
// pkg/audit; it must not block. It is called on the runner's goroutine.
type Auditor interface {
	Spawn(SpawnRecord)
	Complete(CompleteRecord)
	Refused(RefusedRecord)
}

// NopAuditor discards every record (recovery without an audit file).
type NopAuditor struct{}

// Spawn implements Auditor.
func (NopAuditor) Spawn(SpawnRecord) {}

// Complete implements Auditor.
func (NopAuditor) Complete(CompleteRecord) {}

// Refused implements Auditor.
func (NopAuditor) Refused(RefusedRecord) {}
