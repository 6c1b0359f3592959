package metrics_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/varta-go/varta/cmd/varta-watch/internal/metrics"
	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/pkg/audit"
	"github.com/varta-go/varta/pkg/buildinfo"
	"github.com/varta-go/varta/pkg/vlp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// specMetrics is every varta_* family the observer exports (docs/metrics.md
// plus this suite's additions), except varta_build_info whose goversion
// label depends on the toolchain (TestBuildInfo covers it).
var specMetrics = []string{
	"varta_beats_total",
	"varta_stalls_total",
	"varta_status",
	"varta_agent_payload",
	"varta_agents",
	"varta_watch_pids_tracked",
	"varta_tracker_capacity",
	"varta_tracker_evicted_total",
	"varta_tracker_capacity_exceeded_total",
	"varta_tracker_pid_recycle_total",
	"varta_tracker_namespace_conflict_total",
	"varta_decode_errors_total",
	"varta_frame_auth_failures_total",
	"varta_frame_uid_refused_total",
	"varta_frame_namespace_mismatch_total",
	"varta_frame_rejected_pid_above_max_total",
	"varta_origin_conflict_total",
	"varta_out_of_order_total",
	"varta_nonce_wrap_total",
	"varta_io_errors_total",
	"varta_ctrl_truncated_total",
	"varta_truncated_datagrams_total",
	"varta_datagrams_received_total",
	"varta_rate_limited_total",
	"varta_frame_decrypt_failures_total",
	"varta_secure_replay_refused_total",
	"varta_sender_state_full_total",
	"varta_secure_aead_attempts_total",
	"varta_sender_throttled_total",
	"varta_sender_throttle_evictions_total",
	"varta_events_suppressed_total",
	"varta_observer_pause_total",
	"varta_stall_decision_undrained_total",
	"varta_beat_time_clamped_total",
	"varta_recovery_outcomes_total",
	"varta_recovery_refused_total",
	"varta_recovery_duration_seconds",
	"varta_recovery_audit_dropped_total",
	"varta_audit_fsync_budget_exceeded_total",
	"varta_audit_fsync_seconds",
	"varta_stall_detection_lag_seconds",
	"varta_export_dropped_total",
	"varta_export_io_errors_total",
	"varta_state_saves_total",
	"varta_state_save_failures_total",
	"varta_state_load_failures_total",
	"varta_state_agents_restored_total",
	"varta_state_agents_discarded_total",
	"varta_state_replay_senders_restored_total",
	"varta_observer_clock_regression_total",
	"varta_observer_clock_jump_forward_total",
	"varta_observer_uds_rcvbuf_bytes",
	"varta_prom_auth_failures_total",
	"varta_prom_connections_dropped_total",
	"varta_watch_uptime_seconds",
	"varta_watch_last_poll_loop_timestamp_seconds",
	"varta_watch_ticks_total",
	"varta_stalls_surfaced_total",
}

var start = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func fixedOptions(perPid bool) metrics.Options {
	return metrics.Options{
		PerPid: perPid,
		Start:  start,
		Now:    func() time.Time { return start.Add(90*time.Second + 250*time.Millisecond) },
	}
}

// populate applies a known sequence of increments to c and returns the
// table the fake tracker holds.
func populate(c *stats.Counters) []metrics.AgentView {
	c.TrackerEvicted.Add(2)
	c.TrackerCapacityExceeded.Add(1)
	c.TrackerPidRecycle.Add(3)
	c.DecodeErrors[vlp.KindBadCrc].Add(3)
	c.DecodeErrors[vlp.KindBadMagic].Add(1)
	c.FrameAuthFailures.Add(1)
	c.FrameUIDRefused.Add(2)
	c.OutOfOrder.Add(5)
	c.NonceWrap.Add(1)
	c.TruncatedDatagrams.Add(4)
	c.Datagrams.Add(1000)
	c.RateLimited[stats.RateLimitGlobal].Add(6)
	c.SecureAEADAttempts.Add(9)
	c.RecoveryOutcomes[stats.OutcomeSpawned].Add(2)
	c.RecoveryOutcomes[stats.OutcomeReapedZero].Add(1)
	c.CountRefusal(audit.ReasonSocketModeOnly)
	c.RecoveryAuditDropped.Add(1)
	c.ExportDropped.Add(4)
	c.ExportIOErrors.Add(1)
	c.ClockJumpForward.Add(1)
	c.PromAuthFailures.Add(2)
	c.PromConnectionsDropped[stats.PromDropRateLimit].Add(1)
	c.UDSRcvbufBytes.Store(212992)
	c.LastLoopUnixNanos.Store(1_767_323_135_500_000_000)
	c.Ticks.Add(900)
	c.RecoveryDuration.Observe(300 * time.Millisecond)
	c.RecoveryDuration.Observe(45 * time.Second)
	c.AuditFsync.Observe(2 * time.Millisecond)
	c.StallDetectionLag.Observe(3 * time.Millisecond)
	c.StallDetectionLag.Observe(40 * time.Millisecond)
	return []metrics.AgentView{
		{Pid: 4242, Beats: 7, Status: vlp.StatusOk, Payload: 99},
		{Pid: 100, Beats: 12, Status: vlp.StatusDegraded, Payload: 1},
		{Pid: 200, Beats: 3, Stalls: 2, Status: vlp.StatusStall},
		{Pid: 300, Beats: 1, Status: vlp.StatusCritical, Payload: 4294967295},
	}
}

// TestExpositionGolden compares the varta_* exposition with golden files:
// "fresh" is the first scrape of a new observer (every family and every
// enumerated label value present, all zero) and "populated" follows
// populate's increments.
func TestExpositionGolden(t *testing.T) {
	tests := []struct {
		name     string
		counters func() *stats.Counters
		populate bool
	}{
		{name: "fresh", counters: stats.New},
		{name: "fresh_zero_value_counters", counters: func() *stats.Counters { return &stats.Counters{} }},
		{name: "populated", counters: stats.New, populate: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.counters()
			src := &fakeSource{capacity: 4096}
			if tc.populate {
				src.set(populate(c)...)
			}
			reg := metrics.NewRegistry(c, src, fixedOptions(true))
			golden := filepath.Join("testdata", tc.name+".golden")
			if tc.name == "fresh_zero_value_counters" {
				// Counters without allocated histograms export the same
				// empty histograms as stats.New.
				golden = filepath.Join("testdata", "fresh.golden")
			}
			if *update && golden == filepath.Join("testdata", tc.name+".golden") {
				text, err := testutil.GatherAndFormat(reg, expfmt.TypeTextPlain, specMetrics...)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, text, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			f, err := os.Open(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			defer f.Close()
			if err := testutil.GatherAndCompare(reg, f, specMetrics...); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestEveryFamilyPresentOnFirstScrape checks that a fresh registry exports
// exactly the specified families (no more, no fewer) and every value of
// the enumerated labels.
func TestEveryFamilyPresentOnFirstScrape(t *testing.T) {
	reg := metrics.NewRegistry(stats.New(), &fakeSource{capacity: 16}, fixedOptions(true))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string][]string{}
	var got []string
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "varta_") {
			continue
		}
		got = append(got, mf.GetName())
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				labels[mf.GetName()+"/"+lp.GetName()] = append(labels[mf.GetName()+"/"+lp.GetName()], lp.GetValue())
			}
		}
	}
	// Per-pid families have no series without agents.
	want := slices.DeleteFunc(slices.Clone(specMetrics), func(n string) bool {
		return n == "varta_beats_total" || n == "varta_stalls_total" || n == "varta_status" || n == "varta_agent_payload"
	})
	want = append(want, "varta_build_info")
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("families:\n got %v\nwant %v", got, want)
	}
	enums := map[string][]string{
		"varta_decode_errors_total/kind":              vlp.Labels(),
		"varta_rate_limited_total/reason":             {"per_pid", "global"},
		"varta_sender_throttled_total/transport":      {"unix", "udp"},
		"varta_events_suppressed_total/kind":          {"decode", "io", "ctrunc", "mismatch"},
		"varta_agents/state":                          {"ok", "degraded", "critical", "stalled"},
		"varta_prom_connections_dropped_total/reason": {"rate_limit", "ip_table_full", "connection_limit", "connection_evicted"},
		"varta_recovery_refused_total/reason": {"unauthenticated_transport", "socket_mode_only",
			"cross_namespace_agent", "debounce_capacity", "outstanding_capacity"},
		"varta_recovery_outcomes_total/outcome": {"spawned", "debounced", "spawn_failed", "reaped_zero",
			"reaped_nonzero", "killed", "refused_unauthenticated_transport", "refused_socket_mode_only",
			"refused_cross_namespace", "refused_debounce_capacity", "refused_outstanding_capacity",
			"skipped_agent_resumed", "skipped_pid_recycled", "skipped_stall_unverifiable",
			"refused_backoff", "refused_gave_up", "refused_identity_unsafe", "reap_failed", "refused_shutdown", "refused_snoozed"},
	}
	for key, values := range enums {
		t.Run(key, func(t *testing.T) {
			g := slices.Sorted(slices.Values(labels[key]))
			w := slices.Sorted(slices.Values(values))
			if !slices.Equal(g, w) {
				t.Errorf("label values:\n got %v\nwant %v", g, w)
			}
		})
	}
}

func TestBuildInfo(t *testing.T) {
	reg := metrics.NewRegistry(stats.New(), nil, metrics.Options{})
	want := fmt.Sprintf(`# HELP varta_build_info Build information of varta-watch (value 1).
# TYPE varta_build_info gauge
varta_build_info{goversion=%q,version=%q} 1
`, buildinfo.GoVersion(), buildinfo.Version)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "varta_build_info"); err != nil {
		t.Fatal(err)
	}
}

// TestUptimeAndLoopTimestamp checks the time gauges against their sources.
func TestUptimeAndLoopTimestamp(t *testing.T) {
	tests := []struct {
		name       string
		start, now time.Time
		loopNanos  int64
		wantUptime string
		wantLoop   string
	}{
		{"running", start, start.Add(2 * time.Hour), 1_767_323_135_250_000_000, "7200", "1.76732313525e+09"},
		{"before first tick", start, start, 0, "0", "0"},
		{"no start time", time.Time{}, start, 0, "0", "0"},
		{"clock behind start", start, start.Add(-time.Minute), 0, "0", "0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := stats.New()
			c.LastLoopUnixNanos.Store(tc.loopNanos)
			reg := metrics.NewRegistry(c, nil, metrics.Options{Start: tc.start, Now: func() time.Time { return tc.now }})
			want := `# HELP varta_watch_uptime_seconds Seconds since the observer started.
# TYPE varta_watch_uptime_seconds gauge
varta_watch_uptime_seconds ` + tc.wantUptime + `
# HELP varta_watch_last_poll_loop_timestamp_seconds Unix time of the last completed observer tick (0 before the first).
# TYPE varta_watch_last_poll_loop_timestamp_seconds gauge
varta_watch_last_poll_loop_timestamp_seconds ` + tc.wantLoop + `
`
			if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
				"varta_watch_uptime_seconds", "varta_watch_last_poll_loop_timestamp_seconds"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPerPidSeries checks that per-pid series follow the Source at every
// scrape (an evicted pid's series disappear) and that PerPid=false drops
// them while varta_agents and the table gauges stay.
func TestPerPidSeries(t *testing.T) {
	const agentsHeader = `# HELP varta_agents Tracked agents by state (stalled = a surfaced stall not yet ended by a beat).
# TYPE varta_agents gauge
`
	const beatsHeader = `# HELP varta_beats_total Frames accepted from the pid since its tracker slot was created.
# TYPE varta_beats_total counter
`
	const trackedHeader = `# HELP varta_watch_pids_tracked Occupied tracker slots.
# TYPE varta_watch_pids_tracked gauge
`
	a := metrics.AgentView{Pid: 10, Beats: 5, Status: vlp.StatusOk}
	b := metrics.AgentView{Pid: 20, Beats: 8, Stalls: 1, Status: vlp.StatusStall}
	steps := []struct {
		name   string
		agents []metrics.AgentView
		want   map[bool]string // by PerPid
	}{
		{
			name:   "two agents",
			agents: []metrics.AgentView{a, b},
			want: map[bool]string{
				true: beatsHeader + "varta_beats_total{pid=\"10\"} 5\nvarta_beats_total{pid=\"20\"} 8\n" +
					agentsHeader + "varta_agents{state=\"ok\"} 1\nvarta_agents{state=\"degraded\"} 0\nvarta_agents{state=\"critical\"} 0\nvarta_agents{state=\"stalled\"} 1\n" +
					trackedHeader + "varta_watch_pids_tracked 2\n",
				false: agentsHeader + "varta_agents{state=\"ok\"} 1\nvarta_agents{state=\"degraded\"} 0\nvarta_agents{state=\"critical\"} 0\nvarta_agents{state=\"stalled\"} 1\n" +
					trackedHeader + "varta_watch_pids_tracked 2\n",
			},
		},
		{
			name:   "pid 20 evicted",
			agents: []metrics.AgentView{a},
			want: map[bool]string{
				true: beatsHeader + "varta_beats_total{pid=\"10\"} 5\n" +
					agentsHeader + "varta_agents{state=\"ok\"} 1\nvarta_agents{state=\"degraded\"} 0\nvarta_agents{state=\"critical\"} 0\nvarta_agents{state=\"stalled\"} 0\n" +
					trackedHeader + "varta_watch_pids_tracked 1\n",
				false: agentsHeader + "varta_agents{state=\"ok\"} 1\nvarta_agents{state=\"degraded\"} 0\nvarta_agents{state=\"critical\"} 0\nvarta_agents{state=\"stalled\"} 0\n" +
					trackedHeader + "varta_watch_pids_tracked 1\n",
			},
		},
		{
			name: "table empty",
			want: map[bool]string{
				true: agentsHeader + "varta_agents{state=\"ok\"} 0\nvarta_agents{state=\"degraded\"} 0\nvarta_agents{state=\"critical\"} 0\nvarta_agents{state=\"stalled\"} 0\n" +
					trackedHeader + "varta_watch_pids_tracked 0\n",
				false: agentsHeader + "varta_agents{state=\"ok\"} 0\nvarta_agents{state=\"degraded\"} 0\nvarta_agents{state=\"critical\"} 0\nvarta_agents{state=\"stalled\"} 0\n" +
					trackedHeader + "varta_watch_pids_tracked 0\n",
			},
		},
	}
	for _, perPid := range []bool{true, false} {
		t.Run(fmt.Sprintf("PerPid=%v", perPid), func(t *testing.T) {
			src := &fakeSource{capacity: 8}
			reg := metrics.NewRegistry(stats.New(), src, fixedOptions(perPid))
			for _, st := range steps {
				t.Run(st.name, func(t *testing.T) {
					src.set(st.agents...)
					if err := testutil.GatherAndCompare(reg, strings.NewReader(st.want[perPid]),
						"varta_beats_total", "varta_agents", "varta_watch_pids_tracked"); err != nil {
						t.Fatal(err)
					}
					n, err := testutil.GatherAndCount(reg, "varta_beats_total", "varta_stalls_total", "varta_status", "varta_agent_payload")
					if err != nil {
						t.Fatal(err)
					}
					if want := 4 * len(st.agents); perPid && n != want || !perPid && n != 0 {
						t.Fatalf("per-pid series: got %d, PerPid=%v with %d agents", n, perPid, len(st.agents))
					}
				})
			}
		})
	}
}

// TestLint runs promlint over the varta_* families.
func TestLint(t *testing.T) {
	c := stats.New()
	src := &fakeSource{capacity: 8}
	src.set(populate(c)...)
	reg := metrics.NewRegistry(c, src, fixedOptions(true))
	names := append(slices.Clone(specMetrics), "varta_build_info")
	problems, err := testutil.GatherAndLint(reg, names...)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// TestOperatorDocListsEveryMetric keeps docs/metrics.md complete.
func TestOperatorDocListsEveryMetric(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range append(slices.Clone(specMetrics), "varta_build_info") {
		if !regexp.MustCompile("`" + name + "`").Match(doc) {
			t.Errorf("docs/metrics.md does not mention `%s`", name)
		}
	}
}

// repoRoot walks up from the test's directory to the directory of go.work.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.work not found above the test directory")
		}
		dir = parent
	}
}

// TestRefusalsByLabel: reasons that share an outcome label (debounced and
// outstanding_in_flight both count as "debounced") are one series with
// their sum, and a structural reason's count is also its
// varta_recovery_refused_total.
func TestRefusalsByLabel(t *testing.T) {
	c := stats.New()
	c.CountRefusal(audit.ReasonDebounced)
	c.CountRefusal(audit.ReasonOutstandingInFlight)
	c.CountRefusal(audit.ReasonOutstandingInFlight)
	c.CountRefusal(audit.ReasonDebounceCapacity)
	reg := metrics.NewRegistry(c, &fakeSource{capacity: 16}, fixedOptions(false))
	text, err := testutil.GatherAndFormat(reg, expfmt.TypeTextPlain, "varta_recovery_outcomes_total", "varta_recovery_refused_total")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`varta_recovery_outcomes_total{outcome="debounced"} 3`,
		`varta_recovery_outcomes_total{outcome="refused_debounce_capacity"} 1`,
		`varta_recovery_refused_total{reason="debounce_capacity"} 1`,
		`varta_recovery_refused_total{reason="outstanding_capacity"} 0`,
	} {
		if !strings.Contains(string(text), want+"\n") {
			t.Errorf("no %q in:\n%s", want, text)
		}
	}
	if n := strings.Count(string(text), `outcome="debounced"`); n != 1 {
		t.Errorf("%d debounced series, want 1", n)
	}
}
