package stats

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/varta-go/varta/pkg/audit"
	"github.com/varta-go/varta/pkg/vlp"
)

// RateLimitReason is the "reason" label of varta_rate_limited_total.
type RateLimitReason uint8

// Rate-limit reasons.
const (
	RateLimitPerPid RateLimitReason = iota
	RateLimitGlobal
	NumRateLimitReasons
)

var rateLimitLabels = [NumRateLimitReasons]string{"per_pid", "global"}

// Label returns the metric label value.
func (r RateLimitReason) Label() string { return rateLimitLabels[r] }

// Transport is the "transport" label of varta_sender_throttled_total.
type Transport uint8

// Transports.
const (
	TransportUnix Transport = iota
	TransportUDP
	NumTransports
)

var transportLabels = [NumTransports]string{"unix", "udp"}

// Label returns the metric label value.
func (t Transport) Label() string { return transportLabels[t] }

// LineKind is the "kind" label of varta_events_suppressed_total: the
// events-file lines about refused traffic, which are rate-limited.
type LineKind uint8

// Rate-limited events-file line kinds.
const (
	LineDecode LineKind = iota
	LineIO
	LineCtrunc
	LineMismatch
	NumLineKinds
)

var lineKindLabels = [NumLineKinds]string{"decode", "io", "ctrunc", "mismatch"}

// Label returns the metric label value.
func (k LineKind) Label() string { return lineKindLabels[k] }

// Outcome is a counter slot of varta_recovery_outcomes_total: one per
// child result (spawned, reaped_zero, reaped_nonzero, killed, reap_failed)
// and one per refusal reason of pkg/audit's reason table, whose row names
// the outcome label (several reasons may share a label) and whether the
// reason also counts in varta_recovery_refused_total. A new refusal reason
// is one row of that table (docs/recovery.md §3, docs/metrics.md).
type Outcome uint8

// Child outcomes. The refusal outcomes follow, as Refusal(reason).
const (
	OutcomeSpawned Outcome = iota
	OutcomeReapedZero
	OutcomeReapedNonzero
	OutcomeKilled
	// OutcomeReapFailed: a child that could not be reaped (wait failed,
	// or still there after the shutdown grace); its complete record says
	// reap_failed.
	OutcomeReapFailed
	numChildOutcomes
	// NumOutcomes bounds the slots: the child outcomes, then one per
	// valid audit.Reason.
	NumOutcomes = numChildOutcomes + Outcome(audit.NumReasons) - 1
)

var childOutcomeLabels = [numChildOutcomes]string{"spawned", "reaped_zero", "reaped_nonzero", "killed", "reap_failed"}

// Refusal returns the slot of a refusal reason (NumOutcomes for an invalid
// one).
func Refusal(r audit.Reason) Outcome {
	if !r.Valid() {
		return NumOutcomes
	}
	return numChildOutcomes + Outcome(r) - 1
}

// Reason returns the refusal reason of a refusal slot; ok is false for a
// child outcome.
func (o Outcome) Reason() (r audit.Reason, ok bool) {
	if o < numChildOutcomes || o >= NumOutcomes {
		return audit.ReasonNone, false
	}
	return audit.Reason(o-numChildOutcomes) + 1, true
}

// Label returns the metric label value.
func (o Outcome) Label() string {
	if o < numChildOutcomes {
		return childOutcomeLabels[o]
	}
	r, _ := o.Reason()
	return r.Info().Outcome
}

// LabelSlots groups the slots by label value, in slot order of each
// label's first slot: the series of varta_recovery_outcomes_total (a
// label's value is the sum of its slots).
func LabelSlots() (labels []string, slots [][]Outcome) {
	idx := map[string]int{}
	for o := range NumOutcomes {
		l := o.Label()
		i, ok := idx[l]
		if !ok {
			i = len(labels)
			idx[l] = i
			labels = append(labels, l)
			slots = append(slots, nil)
		}
		slots[i] = append(slots[i], o)
	}
	return labels, slots
}

// StructuralReasons are the reasons that also count in
// varta_recovery_refused_total, labelled with their audit code.
func StructuralReasons() []audit.Reason {
	var out []audit.Reason
	for r := audit.ReasonNone + 1; r < audit.NumReasons; r++ {
		if r.Info().Structural {
			out = append(out, r)
		}
	}
	return out
}

// CountRefusal counts one refusal of reason r.
func (c *Counters) CountRefusal(r audit.Reason) {
	if o := Refusal(r); o < NumOutcomes {
		c.RecoveryOutcomes[o].Add(1)
	}
}

// Refusals returns how many refusals of reason r were counted (a
// structural reason's varta_recovery_refused_total).
func (c *Counters) Refusals(r audit.Reason) uint64 {
	if o := Refusal(r); o < NumOutcomes {
		return c.RecoveryOutcomes[o].Load()
	}
	return 0
}

// PromDropReason is the "reason" label of
// varta_prom_connections_dropped_total.
type PromDropReason uint8

// Metrics-endpoint drop reasons.
const (
	PromDropRateLimit PromDropReason = iota
	PromDropIPTableFull
	// PromDropConnectionLimit: a new connection closed unserved because
	// every connection slot was busy with a request.
	PromDropConnectionLimit
	// PromDropConnectionEvicted: an idle (or not yet used) connection
	// closed to make room for a new one.
	PromDropConnectionEvicted
	NumPromDropReasons
)

var promDropLabels = [NumPromDropReasons]string{"rate_limit", "ip_table_full", "connection_limit", "connection_evicted"}

// Label returns the metric label value.
func (r PromDropReason) Label() string { return promDropLabels[r] }

// Counters holds every observer counter and gauge that is not per pid. The
// zero value is ready to use. All fields are safe for concurrent use.
type Counters struct {
	// Tracker.
	TrackerEvicted           atomic.Uint64
	TrackerCapacityExceeded  atomic.Uint64
	TrackerPidRecycle        atomic.Uint64
	TrackerNamespaceConflict atomic.Uint64

	// Ingest.
	DecodeErrors             [vlp.NumKinds]atomic.Uint64
	FrameAuthFailures        atomic.Uint64
	FrameNamespaceMismatch   atomic.Uint64
	FrameRejectedPidAboveMax atomic.Uint64
	FrameUIDRefused          atomic.Uint64
	OriginConflict           atomic.Uint64
	OutOfOrder               atomic.Uint64
	NonceWrap                atomic.Uint64
	IOErrors                 atomic.Uint64
	CtrlTruncated            atomic.Uint64
	TruncatedDatagrams       atomic.Uint64
	RateLimited              [NumRateLimitReasons]atomic.Uint64
	Datagrams                atomic.Uint64 // every datagram received, any listener
	// SenderThrottled: datagrams dropped on arrival because their sender
	// (kernel pid, UDP source) spent its allowance of refused datagrams.
	SenderThrottled [NumTransports]atomic.Uint64
	// SenderThrottleEvictions: entries of a full charged-sender table
	// given to a new offender while still penalised.
	SenderThrottleEvictions atomic.Uint64
	// EventsSuppressed: events-file lines about refused traffic not
	// written because of their rate limit (a summary line counts them).
	EventsSuppressed [NumLineKinds]atomic.Uint64
	// ObserverPauses: times the control loop found it had not run for
	// longer than the pause bound and gave every agent one threshold.
	ObserverPauses atomic.Uint64
	// StallDecisionsUndrained: stall decisions taken when the drain budget
	// ran out before every socket had settled (the daemon was behind its
	// sockets).
	StallDecisionsUndrained atomic.Uint64
	// BeatTimeClamped: beats whose kernel arrival time, moved onto the
	// stall clock, fell outside the window in which the datagram can have
	// arrived (after the read, or before the previous read that emptied
	// the socket: the wall clock was stepped) and was clamped to it.
	BeatTimeClamped atomic.Uint64

	// Secure UDP.
	FrameDecryptFailures atomic.Uint64
	SecureReplayRefused  atomic.Uint64
	SenderStateFull      atomic.Uint64
	SecureAEADAttempts   atomic.Uint64

	// Recovery and audit.
	// StallsSurfaced counts every surfaced stall (varta_stalls_surfaced_total).
	StallsSurfaced atomic.Uint64
	// RecoveryOutcomes counts by Outcome slot; a structural reason's
	// slot is also its varta_recovery_refused_total.
	RecoveryOutcomes         [NumOutcomes]atomic.Uint64
	RecoveryAuditDropped     atomic.Uint64
	AuditFsyncBudgetExceeded atomic.Uint64

	// Events file.
	ExportDropped  atomic.Uint64
	ExportIOErrors atomic.Uint64

	// State directory (--state-dir).
	StateSaves           atomic.Uint64
	StateSaveFailures    atomic.Uint64
	StateLoadFailures    atomic.Uint64
	StateAgentsRestored  atomic.Uint64
	StateAgentsDiscarded atomic.Uint64
	StateReplayRestored  atomic.Uint64

	// Clock.
	ClockRegression  atomic.Uint64
	ClockJumpForward atomic.Uint64

	// Metrics endpoint.
	PromAuthFailures       atomic.Uint64
	PromConnectionsDropped [NumPromDropReasons]atomic.Uint64

	// Gauges.
	UDSRcvbufBytes    atomic.Int64
	LastLoopUnixNanos atomic.Int64 // wall time of the last completed observer tick
	Ticks             atomic.Uint64

	// Histograms.
	RecoveryDuration  *Histogram
	AuditFsync        *Histogram
	StallDetectionLag *Histogram
}

// Default histogram bucket upper bounds, in seconds.
var (
	RecoveryDurationBuckets  = []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}
	AuditFsyncBuckets        = []float64{0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1}
	StallDetectionLagBuckets = []float64{0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1}
)

// New returns Counters with their histograms allocated.
func New() *Counters {
	return &Counters{
		RecoveryDuration:  NewHistogram(RecoveryDurationBuckets),
		AuditFsync:        NewHistogram(AuditFsyncBuckets),
		StallDetectionLag: NewHistogram(StallDetectionLagBuckets),
	}
}

// Histogram is a fixed-bucket, lock-free histogram of durations.
type Histogram struct {
	bounds  []float64 // upper bounds in seconds, ascending
	counts  []atomic.Uint64
	count   atomic.Uint64
	sumBits atomic.Uint64 // float64 seconds
}

// NewHistogram returns a histogram with the given ascending upper bounds
// (seconds). Observations above the last bound count only in +Inf.
func NewHistogram(bounds []float64) *Histogram {
	return &Histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds))}
}

// Observe records one duration. It never allocates.
func (h *Histogram) Observe(d time.Duration) {
	v := d.Seconds()
	for i, b := range h.bounds {
		if v <= b {
			h.counts[i].Add(1)
			break
		}
	}
	h.count.Add(1)
	for {
		old := h.sumBits.Load()
		if h.sumBits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// Snapshot returns the total count, the sum in seconds and the cumulative
// count per upper bound, in the form prometheus.NewConstHistogram takes.
func (h *Histogram) Snapshot() (count uint64, sum float64, buckets map[float64]uint64) {
	buckets = make(map[float64]uint64, len(h.bounds))
	var cum uint64
	for i, b := range h.bounds {
		cum += h.counts[i].Load()
		buckets[b] = cum
	}
	return h.count.Load(), math.Float64frombits(h.sumBits.Load()), buckets
}

// Quantile returns an upper-bound estimate of quantile q (0..1): the
// smallest bucket bound holding at least q of the observations, or +Inf.
func (h *Histogram) Quantile(q float64) float64 {
	total := h.count.Load()
	if total == 0 {
		return 0
	}
	need := uint64(math.Ceil(q * float64(total)))
	var cum uint64
	for i, b := range h.bounds {
		cum += h.counts[i].Load()
		if cum >= need {
			return b
		}
	}
	return math.Inf(1)
}
