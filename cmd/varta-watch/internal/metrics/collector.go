package metrics

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"

	"github.com/varta-go/varta/cmd/varta-watch/internal/identity"
	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/pkg/buildinfo"
	"github.com/varta-go/varta/pkg/vlp"
)

// AgentView is what the metrics need to know about one tracked agent.
type AgentView struct {
	Pid     uint32
	Beats   uint64 // accepted frames since the slot was created
	Stalls  uint64 // stalls surfaced since the slot was created
	Status  vlp.Status
	Payload uint32
	Ident   *identity.Info // the agent's identity and service; nil until known
}

// Source is the tracker's side of the per-agent metrics.
//
// EachAgent calls fn once for every tracked agent, each pid at most once. It
// must be lock-free with respect to ingest (a scrape of a large table must
// never delay a beat) and may run concurrently with it; a view may therefore
// be a few beats old. fn must not retain the AgentView past the call.
// Tracked is the number of occupied slots and Capacity the table size.
type Source interface {
	EachAgent(fn func(AgentView))
	Tracked() int
	Capacity() int
}

// Options tunes NewRegistry.
type Options struct {
	// PerPid exports varta_beats_total, varta_stalls_total, varta_status
	// and varta_agent_payload per pid. Off for very large fleets; the
	// aggregate varta_agents gauge is exported either way.
	PerPid bool
	// Start is when the observer started (varta_watch_uptime_seconds).
	Start time.Time
	// Now returns the current time; nil means time.Now. Tests set it to
	// make varta_watch_uptime_seconds deterministic.
	Now func() time.Time
	// Services exports the per-service families; nil exports none.
	Services ServiceSource
	// Control exports the control socket's families; nil exports none.
	Control ControlSource
}

// Registry is the observer's dedicated Prometheus registry. The embedded
// registry holds the counter, build and time families and the Go and
// process collectors; Gather adds the tracker's families (per-pid series,
// varta_agents, table gauges), which are built straight into their
// exposition form in one walk of the table, because 65,536 agents mean
// 262,144 per-pid series and the generic const-metric path costs about a
// second and 150 MB of garbage per scrape at that size (see
// docs/benchmarks/metrics.md). Always gather through *Registry, never
// through the embedded registry alone.
type Registry struct {
	*prometheus.Registry
	agents *agentGatherer
}

// NewRegistry returns a dedicated registry holding the observer's metric
// families (docs/metrics.md) read from c and src at scrape time, plus the
// standard Go and process collectors. c must not be nil; a nil src exports
// an empty table.
func NewRegistry(c *stats.Counters, src Source, opts Options) *Registry {
	if c == nil {
		panic("metrics: NewRegistry called with nil *stats.Counters")
	}
	agents := newAgentGatherer(src, opts.PerPid)
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newObserverCollector(c, opts),
		agents.reservation(),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if opts.Services != nil {
		reg.MustRegister(newServiceCollector(opts.Services))
	}
	if opts.Control != nil {
		reg.MustRegister(newControlCollector(opts.Control))
	}
	return &Registry{Registry: reg, agents: agents}
}

// Gather implements prometheus.Gatherer: the embedded registry's families
// plus the tracker's, sorted by name. Like the embedded registry, it
// returns what it could gather together with any error.
func (r *Registry) Gather() ([]*dto.MetricFamily, error) {
	mfs, _, err := r.gatherScrape(false)
	return mfs, err
}

// gatherScrape is Gather for the HTTP handler. With stream false it
// returns what Gather returns. With stream true the per-pid families are
// left out of the families and their rows (sorted, unique) returned
// instead, for the handler to write straight to the response.
func (r *Registry) gatherScrape(stream bool) ([]*dto.MetricFamily, []pidRow, error) {
	mfs, err := r.Registry.Gather()
	agg, rows := r.agents.snapshot()
	mfs = append(mfs, agg...)
	if !stream && len(rows) > 0 {
		mfs = append(mfs, perPidFamilies(rows)...)
		rows = nil
	}
	slices.SortFunc(mfs, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return mfs, rows, err
}

// scalarCounter is one unlabelled counter read from stats.Counters.
type scalarCounter struct {
	name, help string
	get        func(*stats.Counters) uint64
}

// scalarCounters lists every unlabelled counter (the registry sorts them
// by name). It is read-only.
var scalarCounters = []scalarCounter{
	{"varta_tracker_evicted_total", "Tracker slots taken over from a long-silent pid to make room for a new one.",
		func(c *stats.Counters) uint64 { return c.TrackerEvicted.Load() }},
	{"varta_tracker_capacity_exceeded_total", "Beats dropped because the tracker was full and no slot could be evicted.",
		func(c *stats.Counters) uint64 { return c.TrackerCapacityExceeded.Load() }},
	{"varta_tracker_pid_recycle_total", "Slots retired because their pid now belongs to a different process (start time changed).",
		func(c *stats.Counters) uint64 { return c.TrackerPidRecycle.Load() }},
	{"varta_tracker_namespace_conflict_total", "Tracker updates refused because the pid's PID namespace changed.",
		func(c *stats.Counters) uint64 { return c.TrackerNamespaceConflict.Load() }},
	{"varta_frame_auth_failures_total", "Unix-socket frames whose pid differs from the kernel-reported sender pid.",
		func(c *stats.Counters) uint64 { return c.FrameAuthFailures.Load() }},
	{"varta_frame_uid_refused_total", "Unix-socket datagrams dropped because the sender's uid and gid are not allowed.",
		func(c *stats.Counters) uint64 { return c.FrameUIDRefused.Load() }},
	{"varta_frame_namespace_mismatch_total", "Frames dropped because the sender lives in another PID namespace.",
		func(c *stats.Counters) uint64 { return c.FrameNamespaceMismatch.Load() }},
	{"varta_frame_rejected_pid_above_max_total", "Frames over an unauthenticated transport claiming a pid above pid_max.",
		func(c *stats.Counters) uint64 { return c.FrameRejectedPidAboveMax.Load() }},
	{"varta_origin_conflict_total", "Frames refused because a stronger origin has pinned the pid.",
		func(c *stats.Counters) uint64 { return c.OriginConflict.Load() }},
	{"varta_out_of_order_total", "Regular frames dropped because their nonce did not advance.",
		func(c *stats.Counters) uint64 { return c.OutOfOrder.Load() }},
	{"varta_nonce_wrap_total", "Regular frames accepted across a nonce wrap-around.",
		func(c *stats.Counters) uint64 { return c.NonceWrap.Load() }},
	{"varta_io_errors_total", "Receive errors on the listeners, including datagrams without credentials.",
		func(c *stats.Counters) uint64 { return c.IOErrors.Load() }},
	{"varta_ctrl_truncated_total", "Datagrams whose control message was truncated (MSG_CTRUNC).",
		func(c *stats.Counters) uint64 { return c.CtrlTruncated.Load() }},
	{"varta_truncated_datagrams_total", "Datagrams dropped because of their size.",
		func(c *stats.Counters) uint64 { return c.TruncatedDatagrams.Load() }},
	{"varta_datagrams_received_total", "Datagrams received on any listener, before any check.",
		func(c *stats.Counters) uint64 { return c.Datagrams.Load() }},
	{"varta_frame_decrypt_failures_total", "Secure UDP frames that failed authenticated decryption.",
		func(c *stats.Counters) uint64 { return c.FrameDecryptFailures.Load() }},
	{"varta_secure_replay_refused_total", "Secure UDP frames refused as replays.",
		func(c *stats.Counters) uint64 { return c.SecureReplayRefused.Load() }},
	{"varta_sender_state_full_total", "Secure UDP frames dropped because the per-sender replay table was full.",
		func(c *stats.Counters) uint64 { return c.SenderStateFull.Load() }},
	{"varta_secure_aead_attempts_total", "AEAD open attempts on secure UDP frames.",
		func(c *stats.Counters) uint64 { return c.SecureAEADAttempts.Load() }},
	{"varta_sender_throttle_evictions_total", "Penalised senders forgotten because the table of charged senders was full.",
		func(c *stats.Counters) uint64 { return c.SenderThrottleEvictions.Load() }},
	{"varta_observer_pause_total", "Times a socket was found not read for longer than a quarter of the threshold (at least 100 ms) plus the drain interval (a stopped or starved daemon); every agent then got one threshold of grace.",
		func(c *stats.Counters) uint64 { return c.ObserverPauses.Load() }},
	{"varta_stall_decision_undrained_total", "Stall decisions taken after waiting 50 ms for the sockets to be read up to the decision without their being so (the daemon was behind its sockets; a stall surfaced then may have had a beat still queued).",
		func(c *stats.Counters) uint64 { return c.StallDecisionsUndrained.Load() }},
	{"varta_beat_time_clamped_total", "Beats whose kernel arrival time, moved onto the stall clock, fell outside the time since the socket was last found empty (a wall-clock step) and was clamped into it.",
		func(c *stats.Counters) uint64 { return c.BeatTimeClamped.Load() }},
	{"varta_recovery_audit_dropped_total", "Recovery audit records dropped because the audit queue was full (data loss).",
		func(c *stats.Counters) uint64 { return c.RecoveryAuditDropped.Load() }},
	{"varta_audit_fsync_budget_exceeded_total", "Audit log fdatasync calls slower than the fsync budget.",
		func(c *stats.Counters) uint64 { return c.AuditFsyncBudgetExceeded.Load() }},
	{"varta_export_dropped_total", "Events-file lines dropped because the writer could not keep up.",
		func(c *stats.Counters) uint64 { return c.ExportDropped.Load() }},
	{"varta_export_io_errors_total", "Events-file write, sync, rotation or reopen errors.",
		func(c *stats.Counters) uint64 { return c.ExportIOErrors.Load() }},
	{"varta_state_saves_total", "State files (tracked agents, replay marks) written to --state-dir.",
		func(c *stats.Counters) uint64 { return c.StateSaves.Load() }},
	{"varta_state_save_failures_total", "State files that could not be written to --state-dir.",
		func(c *stats.Counters) uint64 { return c.StateSaveFailures.Load() }},
	{"varta_state_load_failures_total", "State files refused at start (unreadable, secret-file rules, malformed); the daemon started without them.",
		func(c *stats.Counters) uint64 { return c.StateLoadFailures.Load() }},
	{"varta_state_agents_restored_total", "Agents re-adopted at start from the agents state file.",
		func(c *stats.Counters) uint64 { return c.StateAgentsRestored.Load() }},
	{"varta_state_agents_discarded_total", "Agents of the agents state file not re-adopted (process gone or replaced, other boot, table full).",
		func(c *stats.Counters) uint64 { return c.StateAgentsDiscarded.Load() }},
	{"varta_state_replay_senders_restored_total", "Secure UDP senders whose replay high-water marks were restored at start.",
		func(c *stats.Counters) uint64 { return c.StateReplayRestored.Load() }},
	{"varta_observer_clock_regression_total", "Backward readings of the observer's stall clock.",
		func(c *stats.Counters) uint64 { return c.ClockRegression.Load() }},
	{"varta_observer_clock_jump_forward_total", "Forward jumps of more than 5 s of the observer's stall clock.",
		func(c *stats.Counters) uint64 { return c.ClockJumpForward.Load() }},
	{"varta_stalls_surfaced_total", "Stalls surfaced, all agents together (unlike varta_stalls_total, kept when an agent's slot is retired).",
		func(c *stats.Counters) uint64 { return c.StallsSurfaced.Load() }},
	{"varta_watch_ticks_total", "Completed observer loop ticks.",
		func(c *stats.Counters) uint64 { return c.Ticks.Load() }},
	{"varta_prom_auth_failures_total", "Requests to the metrics endpoint refused with 401.",
		func(c *stats.Counters) uint64 { return c.PromAuthFailures.Load() }},
}

// labelledCounter is a counter family with one enumerated label, every value
// of which is exported from the first scrape.
type labelledCounter struct {
	desc   *prometheus.Desc
	values []string
	get    func(c *stats.Counters, i int) uint64
}

// histogram is a stats histogram exported as a const histogram.
type histogram struct {
	desc    *prometheus.Desc
	get     func(*stats.Counters) *stats.Histogram
	buckets []float64 // bounds used when the stats histogram is nil
}

type scalarDesc struct {
	desc *prometheus.Desc
	get  func(*stats.Counters) uint64
}

// observerCollector exports everything in stats.Counters plus the build,
// uptime and loop gauges. Its descriptors are built once; Collect only reads
// atomics and builds const metrics.
type observerCollector struct {
	c     *stats.Counters
	start time.Time
	now   func() time.Time

	scalars    []scalarDesc
	labelled   []labelledCounter
	histograms []histogram

	rcvbuf    *prometheus.Desc
	uptime    *prometheus.Desc
	lastLoop  *prometheus.Desc
	buildInfo *prometheus.Desc
}

func newObserverCollector(c *stats.Counters, opts Options) *observerCollector {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	oc := &observerCollector{
		c:     c,
		start: opts.Start,
		now:   now,
		rcvbuf: prometheus.NewDesc("varta_observer_uds_rcvbuf_bytes",
			"Receive buffer size the kernel granted to the Unix socket (SO_RCVBUF).", nil, nil),
		uptime: prometheus.NewDesc("varta_watch_uptime_seconds",
			"Seconds since the observer started.", nil, nil),
		lastLoop: prometheus.NewDesc("varta_watch_last_poll_loop_timestamp_seconds",
			"Unix time of the last completed observer tick (0 before the first).", nil, nil),
		buildInfo: prometheus.NewDesc("varta_build_info",
			"Build information of varta-watch (value 1).", []string{"version", "goversion"}, nil),
	}
	for _, s := range scalarCounters {
		oc.scalars = append(oc.scalars, scalarDesc{prometheus.NewDesc(s.name, s.help, nil, nil), s.get})
	}
	// Outcome and refusal labels come from pkg/audit's reason table.
	outcomeLabels, outcomeSlots := stats.LabelSlots()
	structural := stats.StructuralReasons()
	oc.labelled = []labelledCounter{
		{
			desc: prometheus.NewDesc("varta_decode_errors_total",
				"Frames that failed to decode, by error kind.", []string{"kind"}, nil),
			values: enumLabels(int(vlp.NumKinds), func(i int) string { return vlp.Kind(i).Label() }),
			get:    func(c *stats.Counters, i int) uint64 { return c.DecodeErrors[i].Load() },
		},
		{
			desc: prometheus.NewDesc("varta_rate_limited_total",
				"Frames dropped by the per-pid or the global beat rate limit.", []string{"reason"}, nil),
			values: enumLabels(int(stats.NumRateLimitReasons), func(i int) string { return stats.RateLimitReason(i).Label() }),
			get:    func(c *stats.Counters, i int) uint64 { return c.RateLimited[i].Load() },
		},
		{
			desc: prometheus.NewDesc("varta_sender_throttled_total",
				"Datagrams dropped on arrival because their sender (kernel pid on the Unix socket, source address on UDP) spent its allowance of refused datagrams.", []string{"transport"}, nil),
			values: enumLabels(int(stats.NumTransports), func(i int) string { return stats.Transport(i).Label() }),
			get:    func(c *stats.Counters, i int) uint64 { return c.SenderThrottled[i].Load() },
		},
		{
			desc: prometheus.NewDesc("varta_events_suppressed_total",
				"Events-file lines about refused traffic not written because of their rate limit, by line kind.", []string{"kind"}, nil),
			values: enumLabels(int(stats.NumLineKinds), func(i int) string { return stats.LineKind(i).Label() }),
			get:    func(c *stats.Counters, i int) uint64 { return c.EventsSuppressed[i].Load() },
		},
		{
			desc: prometheus.NewDesc("varta_recovery_outcomes_total",
				"Recovery decisions and child results, by outcome.", []string{"outcome"}, nil),
			values: outcomeLabels,
			get: func(c *stats.Counters, i int) uint64 {
				var n uint64
				for _, o := range outcomeSlots[i] {
					n += c.RecoveryOutcomes[o].Load()
				}
				return n
			},
		},
		{
			desc: prometheus.NewDesc("varta_recovery_refused_total",
				"Structural recovery refusals, by reason.", []string{"reason"}, nil),
			values: enumLabels(len(structural), func(i int) string { return structural[i].String() }),
			get:    func(c *stats.Counters, i int) uint64 { return c.Refusals(structural[i]) },
		},
		{
			desc: prometheus.NewDesc("varta_prom_connections_dropped_total",
				"Requests and connections of the metrics endpoint refused or closed by its limits (per-client rate, client table, connection slots), by reason.", []string{"reason"}, nil),
			values: enumLabels(int(stats.NumPromDropReasons), func(i int) string { return stats.PromDropReason(i).Label() }),
			get:    func(c *stats.Counters, i int) uint64 { return c.PromConnectionsDropped[i].Load() },
		},
	}
	oc.histograms = []histogram{
		{
			desc: prometheus.NewDesc("varta_recovery_duration_seconds",
				"Run time of finished recovery children, spawn to reap.", nil, nil),
			get:     func(c *stats.Counters) *stats.Histogram { return c.RecoveryDuration },
			buckets: stats.RecoveryDurationBuckets,
		},
		{
			desc: prometheus.NewDesc("varta_audit_fsync_seconds",
				"Duration of audit log fdatasync calls.", nil, nil),
			get:     func(c *stats.Counters) *stats.Histogram { return c.AuditFsync },
			buckets: stats.AuditFsyncBuckets,
		},
		{
			desc: prometheus.NewDesc("varta_stall_detection_lag_seconds",
				"Time from a stall's deadline to when the observer surfaced it.", nil, nil),
			get:     func(c *stats.Counters) *stats.Histogram { return c.StallDetectionLag },
			buckets: stats.StallDetectionLagBuckets,
		},
	}
	return oc
}

func enumLabels(n int, label func(int) string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = label(i)
	}
	return out
}

// Describe implements prometheus.Collector.
func (oc *observerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, s := range oc.scalars {
		ch <- s.desc
	}
	for _, l := range oc.labelled {
		ch <- l.desc
	}
	for _, h := range oc.histograms {
		ch <- h.desc
	}
	ch <- oc.rcvbuf
	ch <- oc.uptime
	ch <- oc.lastLoop
	ch <- oc.buildInfo
}

// Collect implements prometheus.Collector.
func (oc *observerCollector) Collect(ch chan<- prometheus.Metric) {
	c := oc.c
	for _, s := range oc.scalars {
		ch <- prometheus.MustNewConstMetric(s.desc, prometheus.CounterValue, float64(s.get(c)))
	}
	for _, l := range oc.labelled {
		for i, v := range l.values {
			ch <- prometheus.MustNewConstMetric(l.desc, prometheus.CounterValue, float64(l.get(c, i)), v)
		}
	}
	for _, h := range oc.histograms {
		if sh := h.get(c); sh != nil {
			count, sum, buckets := sh.Snapshot()
			ch <- prometheus.MustNewConstHistogram(h.desc, count, sum, buckets)
		} else {
			empty := make(map[float64]uint64, len(h.buckets))
			for _, b := range h.buckets {
				empty[b] = 0
			}
			ch <- prometheus.MustNewConstHistogram(h.desc, 0, 0, empty)
		}
	}
	ch <- prometheus.MustNewConstMetric(oc.rcvbuf, prometheus.GaugeValue, float64(c.UDSRcvbufBytes.Load()))
	uptime := 0.0
	if !oc.start.IsZero() {
		uptime = math.Max(0, oc.now().Sub(oc.start).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(oc.uptime, prometheus.GaugeValue, uptime)
	ch <- prometheus.MustNewConstMetric(oc.lastLoop, prometheus.GaugeValue, unixSeconds(c.LastLoopUnixNanos.Load()))
	ch <- prometheus.MustNewConstMetric(oc.buildInfo, prometheus.GaugeValue, 1, buildinfo.Version, buildinfo.GoVersion())
}

// unixSeconds converts Unix nanoseconds to seconds without the rounding
// error of converting the whole nanosecond count to float64 first.
func unixSeconds(ns int64) float64 {
	return float64(ns/1e9) + float64(ns%1e9)/1e9
}
