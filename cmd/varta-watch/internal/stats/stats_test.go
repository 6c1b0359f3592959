package stats

import (
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/varta-go/varta/pkg/audit"
)

func TestHistogram(t *testing.T) {
	h := NewHistogram([]float64{0.001, 0.01, 0.1})
	for _, d := range []time.Duration{500 * time.Microsecond, time.Millisecond, 5 * time.Millisecond, 50 * time.Millisecond, time.Second} {
		h.Observe(d)
	}
	count, sum, buckets := h.Snapshot()
	if count != 5 {
		t.Fatalf("count %d", count)
	}
	if want := 0.0005 + 0.001 + 0.005 + 0.05 + 1; math.Abs(sum-want) > 1e-9 {
		t.Fatalf("sum %v, want %v", sum, want)
	}
	// Cumulative: ≤1ms: 2, ≤10ms: 3, ≤100ms: 4; the 1 s observation is only in +Inf.
	for bound, want := range map[float64]uint64{0.001: 2, 0.01: 3, 0.1: 4} {
		if buckets[bound] != want {
			t.Errorf("bucket %v = %d, want %d", bound, buckets[bound], want)
		}
	}
	for q, want := range map[float64]float64{0.4: 0.001, 0.6: 0.01, 0.8: 0.1, 0.99: math.Inf(1)} {
		if got := h.Quantile(q); got != want {
			t.Errorf("Quantile(%v) = %v, want %v", q, got, want)
		}
	}
	if NewHistogram([]float64{1}).Quantile(0.5) != 0 {
		t.Error("empty histogram quantile must be 0")
	}
}

func TestHistogramConcurrent(t *testing.T) {
	h := NewHistogram(StallDetectionLagBuckets)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				h.Observe(time.Millisecond)
			}
		}()
	}
	wg.Wait()
	count, sum, _ := h.Snapshot()
	if count != 4000 || math.Abs(sum-4) > 1e-6 {
		t.Fatalf("count %d sum %v", count, sum)
	}
}

func TestObserveDoesNotAllocate(t *testing.T) {
	h := NewHistogram(RecoveryDurationBuckets)
	if a := testing.AllocsPerRun(100, func() { h.Observe(time.Second) }); a != 0 {
		t.Fatalf("%v allocs", a)
	}
}

func TestLabels(t *testing.T) {
	if RateLimitGlobal.Label() != "global" || PromDropIPTableFull.Label() != "ip_table_full" {
		t.Fatal("label mismatch")
	}
}

// TestOutcomeLabels walks pkg/audit's reason table through the outcome
// slots: every reason has its own slot and label, and the label values of
// varta_recovery_outcomes_total and varta_recovery_refused_total are
// exactly the ones docs/metrics.md lists (the test's own copy).
func TestOutcomeLabels(t *testing.T) {
	wantOutcomes := []string{"spawned", "debounced", "spawn_failed", "reaped_zero", "reaped_nonzero",
		"killed", "refused_unauthenticated_transport", "refused_socket_mode_only",
		"refused_cross_namespace", "refused_debounce_capacity", "refused_outstanding_capacity",
		"skipped_agent_resumed", "skipped_pid_recycled", "skipped_stall_unverifiable",
		"refused_backoff", "refused_gave_up", "refused_identity_unsafe", "reap_failed",
		"refused_shutdown", "refused_snoozed"}
	wantRefused := []string{"unauthenticated_transport", "socket_mode_only", "cross_namespace_agent",
		"debounce_capacity", "outstanding_capacity"}

	for r := audit.ReasonNone + 1; r < audit.NumReasons; r++ {
		o := Refusal(r)
		if o >= NumOutcomes || o < numChildOutcomes {
			t.Fatalf("reason %s: slot %d out of the refusal range", r, o)
		}
		if back, ok := o.Reason(); !ok || back != r {
			t.Errorf("reason %s: slot %d maps back to %s", r, o, back)
		}
		if o.Label() == "" || o.Label() != r.Info().Outcome {
			t.Errorf("reason %s: label %q, table says %q", r, o.Label(), r.Info().Outcome)
		}
	}
	if Refusal(audit.ReasonNone) != NumOutcomes || Refusal(audit.NumReasons) != NumOutcomes {
		t.Error("an invalid reason has a slot")
	}
	labels, slots := LabelSlots()
	n := 0
	for i, l := range labels {
		n += len(slots[i])
		for _, o := range slots[i] {
			if o.Label() != l {
				t.Errorf("slot %d (%s) grouped under %s", o, o.Label(), l)
			}
		}
	}
	if n != int(NumOutcomes) {
		t.Errorf("%d slots grouped, want %d", n, NumOutcomes)
	}
	slices.Sort(labels)
	slices.Sort(wantOutcomes)
	if !slices.Equal(labels, wantOutcomes) {
		t.Errorf("outcome labels\n got %q\nwant %q", labels, wantOutcomes)
	}
	var refused []string
	for _, r := range StructuralReasons() {
		refused = append(refused, r.String())
	}
	slices.Sort(refused)
	slices.Sort(wantRefused)
	if !slices.Equal(refused, wantRefused) {
		t.Errorf("refused labels\n got %q\nwant %q", refused, wantRefused)
	}

	var c Counters
	c.CountRefusal(audit.ReasonOutstandingInFlight)
	c.CountRefusal(audit.ReasonDebounced)
	c.CountRefusal(audit.ReasonNone) // not counted, no panic
	if c.Refusals(audit.ReasonDebounced) != 1 || c.Refusals(audit.ReasonOutstandingInFlight) != 1 {
		t.Errorf("refusals not counted per reason")
	}
}
