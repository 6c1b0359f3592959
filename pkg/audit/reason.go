package audit

import "strings"

// Reason is a refusal reason varta-watch writes in the reason column of a
// refused record (docs/recovery.md §3). Its table below is the one place a
// reason is defined: the audit text, the outcome label of
// varta_recovery_outcomes_total it counts under, whether it is one of the
// structural refusals of varta_recovery_refused_total, and the sentence
// the daemon's log gives for it. The zero value is no reason.
//
// The verifier and parser accept any sanitized token in the column (so
// that a newer daemon's reasons still verify); RefusedRecord.Reason stays
// the column's text.
type Reason uint8

// Refusal reasons, in the order of the decision (docs/recovery.md §3).
const (
	ReasonNone Reason = iota
	ReasonSkippedAgentResumed
	ReasonSkippedPidRecycled
	ReasonSkippedStallUnverifiable
	ReasonCrossNamespaceAgent
	ReasonUnauthenticatedTransport
	ReasonSocketModeOnly
	ReasonDebounced
	ReasonOutstandingInFlight
	ReasonOutstandingCapacity
	ReasonDebounceCapacity
	ReasonSnoozed
	ReasonIdentityUnsafe
	ReasonBackoff
	ReasonGaveUp
	ReasonSpawnFailed
	// ReasonShutdown: the stall was still queued for a decision when the
	// daemon shut down.
	ReasonShutdown
	// NumReasons bounds the reasons: 1 ≤ r < NumReasons.
	NumReasons
)

// ReasonInfo is one row of the reason table.
type ReasonInfo struct {
	// Code is the reason column's text; a PerService reason is written as
	// Code + ":" + the service.
	Code string
	// Outcome is the outcome label of varta_recovery_outcomes_total the
	// refusal counts under (several reasons may share one).
	Outcome string
	// Structural refusals also count in varta_recovery_refused_total,
	// under the label Code.
	Structural bool
	// PerService reasons name the service after a colon (policy and
	// operator refusals).
	PerService bool
	// Why explains the refusal in words (the daemon's log line).
	Why string
}

var reasonTable = [NumReasons]ReasonInfo{
	ReasonSkippedAgentResumed: {Code: "skipped_agent_resumed", Outcome: "skipped_agent_resumed",
		Why: "the agent beat again before recovery started"},
	ReasonSkippedPidRecycled: {Code: "skipped_pid_recycled", Outcome: "skipped_pid_recycled",
		Why: "the pid now belongs to another process"},
	ReasonSkippedStallUnverifiable: {Code: "skipped_stall_unverifiable", Outcome: "skipped_stall_unverifiable",
		Why: "the process is gone (a crash or a stop: pair varta with the init system's Restart=)"},
	ReasonCrossNamespaceAgent: {Code: "cross_namespace_agent", Outcome: "refused_cross_namespace", Structural: true,
		Why: "the agent is in another PID namespace (--allow-cross-namespace-agents is off)"},
	ReasonUnauthenticatedTransport: {Code: "unauthenticated_transport", Outcome: "refused_unauthenticated_transport", Structural: true,
		Why: "the beats came over UDP without the operator's acceptance flag"},
	ReasonSocketModeOnly: {Code: "socket_mode_only", Outcome: "refused_socket_mode_only", Structural: true,
		Why: "the sender's identity could not be pinned"},
	ReasonDebounced: {Code: "debounced", Outcome: "debounced",
		Why: "the same process was recovered less than --recovery-debounce-ms ago"},
	ReasonOutstandingInFlight: {Code: "outstanding_in_flight", Outcome: "debounced",
		Why: "a recovery child for this process is still running"},
	ReasonOutstandingCapacity: {Code: "outstanding_capacity", Outcome: "refused_outstanding_capacity", Structural: true,
		Why: "the table of running recovery children is full"},
	ReasonDebounceCapacity: {Code: "debounce_capacity", Outcome: "refused_debounce_capacity", Structural: true,
		Why: "the debounce ledger is full"},
	ReasonSnoozed: {Code: "snoozed", Outcome: "refused_snoozed", PerService: true,
		Why: "an operator snoozed the agent's recovery"},
	ReasonIdentityUnsafe: {Code: "identity_unsafe", Outcome: "refused_identity_unsafe", PerService: true,
		Why: "a placeholder of the policy's recovery arguments has an unknown or unsafe value"},
	ReasonBackoff: {Code: "backoff", Outcome: "refused_backoff", PerService: true,
		Why: "the service was recovered recently: its restart budget's backoff window is open"},
	ReasonGaveUp: {Code: "gave_up", Outcome: "refused_gave_up", PerService: true,
		Why: "the service used up its restart budget (give_up) and waits for retry_after"},
	ReasonSpawnFailed: {Code: "spawn_failed", Outcome: "spawn_failed",
		Why: "the recovery program could not be started"},
	ReasonShutdown: {Code: "shutdown", Outcome: "refused_shutdown",
		Why: "the daemon shut down before the stall was decided"},
}

// Valid reports whether r is a reason of the table.
func (r Reason) Valid() bool { return r > ReasonNone && r < NumReasons }

// Info returns r's row of the table (the zero row for an invalid r).
func (r Reason) Info() ReasonInfo {
	if !r.Valid() {
		return ReasonInfo{}
	}
	return reasonTable[r]
}

// String returns the reason's code ("" for ReasonNone or an invalid r).
func (r Reason) String() string { return r.Info().Code }

// Column returns the reason column's text for a refusal of service: the
// code, followed by ":" and the service for a PerService reason.
func (r Reason) Column(service string) string {
	info := r.Info()
	if info.PerService {
		return info.Code + ":" + service
	}
	return info.Code
}

// ParseReason maps a reason column's text to its Reason and, for a
// PerService reason, its service. ok is false for a text no reason of the
// table writes (a newer daemon's reason, or a hand-written one).
func ParseReason(column string) (r Reason, service string, ok bool) {
	code, svc, hasSvc := strings.Cut(column, ":")
	for r := ReasonNone + 1; r < NumReasons; r++ {
		info := &reasonTable[r]
		if info.Code == code && info.PerService == hasSvc {
			return r, svc, true
		}
	}
	return ReasonNone, "", false
}
