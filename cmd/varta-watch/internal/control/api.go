package control

import (
	"time"
)

// API paths. The version prefix lets a later daemon change a reply
// without breaking older clients.
const (
	PathAgents   = "/v1/agents"
	PathServices = "/v1/services"
	PathSnoozes  = "/v1/snoozes"
	PathSnooze   = "/v1/snooze"
	PathResume   = "/v1/resume"
	PathReload   = "/v1/reload"
)

// Agent states shown by the agents command. ok, degraded and critical are
// the agent's last reported status; stalled is a surfaced stall not yet
// ended by a beat; snoozed is such a stall while the agent is snoozed (it
// will not be recovered); gave_up is such a stall while the service's
// restart budget gave up.
const (
	StateOK       = "ok"
	StateDegraded = "degraded"
	StateCritical = "critical"
	StateStalled  = "stalled"
	StateSnoozed  = "snoozed"
	StateGaveUp   = "gave_up"
)

// States lists the agent states in display order.
var States = []string{StateOK, StateDegraded, StateCritical, StateStalled, StateSnoozed, StateGaveUp}

// Agent is one tracked agent as the agents endpoint reports it.
type Agent struct {
	Pid     uint32 `json:"pid"`
	Service string `json:"service"` // "-" when unknown
	Unit    string `json:"unit"`    // "-" when unknown
	State   string `json:"state"`
	// LastBeatAgeMs is how long ago the last frame was accepted, in ms.
	LastBeatAgeMs int64  `json:"last_beat_age_ms"`
	Beats         uint64 `json:"beats"`
	Stalls        uint64 `json:"stalls"`
	Recoveries    uint64 `json:"recoveries"`
	Origin        string `json:"origin"`
	// Snoozed is set when a snooze in force matches the agent.
	Snoozed *SnoozeRef `json:"snoozed,omitempty"`
}

// SnoozeRef names the snooze that matches an agent or a service.
type SnoozeRef struct {
	Target  string    `json:"target"`
	Until   time.Time `json:"until,omitzero"`
	Forever bool      `json:"forever,omitempty"`
	Reason  string    `json:"reason"`
}

// AgentsReply is the body of GET /v1/agents.
type AgentsReply struct {
	// At is the daemon's wall-clock time of the snapshot.
	At     time.Time `json:"at"`
	Agents []Agent   `json:"agents"`
}

// Service is one row of GET /v1/services.
type Service struct {
	Name string `json:"name"`
	// Agents counts the service's agents by state (only states with at
	// least one agent are present).
	Agents map[string]int `json:"agents"`
	// LastRecovery is the time of the last recovery spawned for an agent
	// of the service, if known.
	LastRecovery time.Time `json:"last_recovery,omitzero"`
	// BackoffUntil and GaveUpUntil come from the service's restart budget
	// (a policy file); zero when none.
	BackoffUntil time.Time  `json:"backoff_until,omitzero"`
	GaveUpUntil  time.Time  `json:"gave_up_until,omitzero"`
	Snoozed      *SnoozeRef `json:"snoozed,omitempty"`
}

// ServicesReply is the body of GET /v1/services.
type ServicesReply struct {
	At       time.Time `json:"at"`
	Services []Service `json:"services"`
}

// Snooze is one snooze in force, as GET /v1/snoozes and POST /v1/snooze
// report it.
type Snooze struct {
	Target  string    `json:"target"`
	Until   time.Time `json:"until,omitzero"`
	Forever bool      `json:"forever,omitempty"`
	Reason  string    `json:"reason"`
	UID     uint32    `json:"uid"`
	Since   time.Time `json:"since"`
}

// SnoozesReply is the body of GET /v1/snoozes.
type SnoozesReply struct {
	Snoozes []Snooze `json:"snoozes"`
}

// SnoozeRequest is the body of POST /v1/snooze.
type SnoozeRequest struct {
	Target string `json:"target"`
	// For is a Go duration ("30m") or "forever".
	For    string `json:"for"`
	Reason string `json:"reason"`
}

// ResumeRequest is the body of POST /v1/resume.
type ResumeRequest struct {
	Target string `json:"target"`
	Reason string `json:"reason,omitempty"`
}

// ResumeReply is the body of a successful POST /v1/resume.
type ResumeReply struct {
	Resumed Snooze `json:"resumed"`
}

// ReloadReply is the body of POST /v1/reload: Result is "ok" or "error"
// (then Error says why; the HTTP status is 422).
type ReloadReply struct {
	Result string `json:"result"`
	Error  string `json:"error,omitempty"`
}

// ErrorReply is the body of every other non-2xx reply.
type ErrorReply struct {
	Error string `json:"error"`
}
