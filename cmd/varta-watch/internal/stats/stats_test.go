package stats

import (
	"math"
	"sync"
	"testing"
	"time"
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
	seen := map[string]bool{}
	for o := Outcome(0); o < NumOutcomes; o++ {
		if l := o.Label(); l == "" || seen[l] {
			t.Fatalf("outcome %d label %q", o, l)
		} else {
			seen[l] = true
		}
	}
	if RefusedOutstandingCapacity.Label() != "outstanding_capacity" || RateLimitGlobal.Label() != "global" || PromDropIPTableFull.Label() != "ip_table_full" {
		t.Fatal("label mismatch")
	}
}
