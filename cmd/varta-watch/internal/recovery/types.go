package recovery

import (
	"github.com/varta-go/varta/cmd/varta-watch/internal/identity"
	"github.com/varta-go/varta/pkg/audit"
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

// Plan is the service layer's say on a stall that passed every gate
// (docs/services.md): a refusal, nothing at all, or the argument list to
// run instead of the command line's.
type Plan struct {
	// Refuse, when valid, refuses the recovery with this reason (written
	// with the service for a per-service reason).
	Refuse audit.Reason
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

// Note is what the daemon knows about a decision beyond its audit
// record: the service and identity of the agent (for the per-service
// metrics and the log) and, for a refusal, its reason.
type Note struct {
	// Service is the stall's service, or the Plan's ("" when unknown).
	Service string
	// Ident is the agent's identity when the stall was surfaced (nil:
	// unknown, a UDP agent).
	Ident *identity.Info
	// Reason is the reason of a refused record (ReasonNone otherwise); the
	// record's Reason column is Reason.Column(Service).
	Reason audit.Reason
}

// Auditor receives every decision. The observer implements it on top of
// pkg/audit; it must not block. It is called on the runner's goroutine.
// Records are pkg/audit's, filled as the audit log writes them; the
// wallclock column is left 0 for the writer to stamp.
type Auditor interface {
	Spawn(audit.SpawnRecord, Note)
	Complete(audit.CompleteRecord, Note)
	Refused(audit.RefusedRecord, Note)
}

// NopAuditor discards every record (recovery without an audit file).
type NopAuditor struct{}

// Spawn implements Auditor.
func (NopAuditor) Spawn(audit.SpawnRecord, Note) {}

// Complete implements Auditor.
func (NopAuditor) Complete(audit.CompleteRecord, Note) {}

// Refused implements Auditor.
func (NopAuditor) Refused(audit.RefusedRecord, Note) {}
