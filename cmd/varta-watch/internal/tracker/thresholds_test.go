package tracker

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/identity"
	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/pkg/vlp"
)

const udpOrigin = vlp.OriginNetworkUnverified

// admitWith opens pid at now and gives it threshold index th.
func admitWith(t testing.TB, tr *Tracker, pid uint32, now int64, th int) *identity.Info {
	t.Helper()
	r := tr.Observe(beat(pid, 1), udpOrigin, now)
	if r.Verdict != Accepted || !r.First {
		t.Fatalf("pid %d: %+v", pid, r)
	}
	info := &identity.Info{Service: fmt.Sprintf("svc%d", th), Rule: th - 1}
	if !tr.SetIdent(pid, r.Epoch, 0, info, th) {
		t.Fatalf("SetIdent %d refused", pid)
	}
	return info
}

func TestPerThresholdDeadlines(t *testing.T) {
	tr, _ := newTracker(t, Options{Threshold: 100 * ms, Thresholds: []int64{300 * ms, 50 * ms}})
	admitWith(t, tr, 10, 0, 0)        // due 100
	web := admitWith(t, tr, 11, 0, 1) // due 300
	admitWith(t, tr, 12, 20*ms, 2)    // due 70
	admitWith(t, tr, 13, 40*ms, 0)    // due 140
	if d, ok := tr.NextDeadline(); !ok || d != 70*ms {
		t.Fatalf("next deadline %d", d/ms)
	}
	var got []uint32
	due := func(now int64) {
		tr.Due(now, func(s Stall) {
			if s.Deadline > now || s.Deadline != s.Surfaced-(now-s.Deadline) {
				t.Fatalf("stall %+v surfaced early at %d", s, now)
			}
			got = append(got, s.Pid)
		})
	}
	due(69 * ms)
	if len(got) != 0 {
		t.Fatalf("surfaced early: %v", got)
	}
	due(299 * ms)
	if !slices.Equal(got, []uint32{12, 10, 13}) {
		t.Fatalf("surfaced %v, want deadline order 12 10 13", got)
	}
	// A beat moves 11 to the tail of its own list: due 300 + 250.
	tr.Observe(beat(11, 2), udpOrigin, 250*ms)
	due(549 * ms)
	if len(got) != 3 {
		t.Fatalf("11 surfaced before its 300 ms threshold: %v", got)
	}
	due(550 * ms)
	if !slices.Equal(got, []uint32{12, 10, 13, 11}) {
		t.Fatalf("surfaced %v", got)
	}
	snap, _ := tr.Lookup(11)
	if snap.Ident != web || snap.Threshold != 300*ms {
		t.Fatalf("snapshot %+v", snap)
	}
}

func TestSetIdentChecksTheStream(t *testing.T) {
	tr, _ := newTracker(t, Options{Thresholds: []int64{500 * ms}})
	r := tr.Observe(beat(10, 1), udpOrigin, 0)
	if tr.SetIdent(10, r.Epoch+1, 0, identity.None, 1) {
		t.Fatal("a stale epoch was accepted")
	}
	if tr.SetIdent(99, r.Epoch, 0, identity.None, 1) {
		t.Fatal("an untracked pid was accepted")
	}
	if !tr.SetIdent(10, r.Epoch, 0, identity.None, 7) { // out of range: index 0
		t.Fatal("refused")
	}
	if s, _ := tr.Lookup(10); s.Threshold != 100*ms || s.Ident != identity.None {
		t.Fatalf("snapshot %+v", s)
	}
	r2 := tr.Observe(beat(10, 2), udpOrigin, ms)
	if r2.Ident != identity.None || r2.Epoch != r.Epoch {
		t.Fatalf("result %+v", r2)
	}
	var seen int
	tr.EachAgent(func(v AgentView) {
		if v.Ident == identity.None {
			seen++
		}
	})
	if seen != 1 {
		t.Fatal("EachAgent lacks the identity")
	}
}

// TestMixedThresholdsNeverEarlyNeverLate drives many agents with random
// beats and threshold changes and checks, at every step, that Due surfaces
// exactly the agents whose own deadline has passed, in deadline order.
func TestMixedThresholdsNeverEarlyNeverLate(t *testing.T) {
	ths := []int64{100 * ms, 30 * ms, 250 * ms}
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 300
	tr, _ := newTracker(t, Options{Capacity: n, Threshold: ths[0], Thresholds: ths[1:]})
	type model struct {
		lastSeen int64
		th       int
		nonce    uint64
		stalled  bool
		epoch    uint32
	}
	m := make([]model, n)
	now := int64(0)
	for i := range m {
		r := tr.Observe(beat(uint32(i+2), 1), udpOrigin, now)
		m[i] = model{lastSeen: now, nonce: 1, epoch: r.Epoch}
	}
	for step := 0; step < 3000; step++ {
		now += int64(rng.IntN(5)) * ms
		i := rng.IntN(n)
		pid := uint32(i + 2)
		switch rng.IntN(3) {
		case 0, 1:
			m[i].nonce++
			if r := tr.Observe(beat(pid, m[i].nonce), udpOrigin, now); r.Verdict != Accepted {
				t.Fatalf("beat refused: %+v", r)
			}
			m[i].lastSeen, m[i].stalled = now, false
		case 2:
			th := rng.IntN(len(ths))
			if !tr.SetIdent(pid, m[i].epoch, 0, identity.None, th) {
				t.Fatal("SetIdent refused")
			}
			m[i].th = th
		}
		var want []Stall
		for j := range m {
			if d := m[j].lastSeen + ths[m[j].th]; !m[j].stalled && d <= now {
				want = append(want, Stall{Pid: uint32(j + 2), Deadline: d})
			}
		}
		slices.SortStableFunc(want, func(a, b Stall) int { return int(a.Deadline - b.Deadline) })
		var got []Stall
		tr.Due(now, func(s Stall) { got = append(got, Stall{Pid: s.Pid, Deadline: s.Deadline}) })
		if len(got) != len(want) {
			t.Fatalf("step %d: surfaced %v, want %v", step, got, want)
		}
		for k := range got {
			if got[k].Deadline != want[k].Deadline {
				t.Fatalf("step %d: surfaced %v, want %v", step, got, want)
			}
			m[got[k].Pid-2].stalled = true
		}
		if next, ok := tr.NextDeadline(); ok && next <= now {
			t.Fatalf("step %d: next deadline %d is not after now %d", step, next, now)
		}
	}
}

func TestRetarget(t *testing.T) {
	tr, _ := newTracker(t, Options{Threshold: 100 * ms, Thresholds: []int64{300 * ms}})
	a := admitWith(t, tr, 10, 0, 1)
	b := admitWith(t, tr, 11, 10*ms, 0)
	tr.Observe(beat(12, 1), udpOrigin, 20*ms) // no identity: stays on index 0
	// The reload drops 300 ms and adds 40 ms; a moves to it, b keeps 100 ms.
	err := tr.Retarget([]int64{40 * ms}, func(info *identity.Info) (*identity.Info, int) {
		if info == a {
			return info.WithService("renamed", 0), 1
		}
		return info, 0
	})
	if err != nil {
		t.Fatal(err)
	}
	if th := tr.Thresholds(); !slices.Equal(th, []int64{100 * ms, 40 * ms}) {
		t.Fatalf("thresholds %v", th)
	}
	var got []uint32
	tr.Due(119*ms, func(s Stall) { got = append(got, s.Pid) })
	if !slices.Equal(got, []uint32{10, 11}) {
		t.Fatalf("after retarget: %v", got)
	}
	if s, _ := tr.Lookup(10); s.Ident.Service != "renamed" || s.Threshold != 40*ms {
		t.Fatalf("a: %+v", s.Ident)
	}
	if s, _ := tr.Lookup(11); s.Ident != b {
		t.Fatal("b's identity changed")
	}
	if err := tr.Retarget(make([]int64, MaxThresholds), nil); err == nil {
		t.Fatal("too many thresholds accepted")
	}
}

// BenchmarkObserveMixedThresholds: accepting a beat stays O(1) with agents
// spread over three thresholds.
func BenchmarkObserveMixedThresholds(b *testing.B) {
	const n = 10000
	tr, err := New(Options{Capacity: n, Threshold: int64(time.Second), Thresholds: []int64{int64(2 * time.Second), int64(5 * time.Second)}, PidLimit: MaxDenseIndex}, stats.New())
	if err != nil {
		b.Fatal(err)
	}
	frames := make([]vlp.Frame, n)
	for i := range frames {
		frames[i] = vlp.Frame{Pid: uint32(i + 2), Nonce: 1}
		r := tr.Observe(&frames[i], udpOrigin, 0)
		tr.SetIdent(frames[i].Pid, r.Epoch, 0, identity.None, i%3)
	}
	now := int64(0)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		f := &frames[i]
		f.Nonce++
		now += 1000
		if tr.Observe(f, udpOrigin, now).Verdict != Accepted {
			b.Fatal("not accepted")
		}
		i = (i + 1) % n
	}
}

// BenchmarkStallLagMixedThresholds: 10,000 agents over three thresholds
// (200, 350 and 500 ms, by pid) beat once at spread-out times during
// 300 ms and then fall silent; a loop like the observer's sleeps on a real
// timer until NextDeadline and calls Due. Every stall's lag (surfaced −
// its own deadline) is recorded; a negative lag (a stall surfaced early)
// fails the benchmark. Reports p50, p99 and max lag.
func BenchmarkStallLagMixedThresholds(b *testing.B) {
	const n = 10000
	ths := []int64{int64(200 * time.Millisecond), int64(350 * time.Millisecond), int64(500 * time.Millisecond)}
	var lags []time.Duration
	for b.Loop() {
		tr, err := New(Options{Capacity: n, Threshold: ths[0], Thresholds: ths[1:], PidLimit: MaxDenseIndex}, stats.New())
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		now := func() int64 { return int64(time.Since(start)) }
		rng := rand.New(rand.NewPCG(3, 4))
		offsets := make([]int64, n)
		for i := range offsets {
			offsets[i] = rng.Int64N(int64(300 * time.Millisecond))
		}
		slices.Sort(offsets)
		surfaced := 0
		timer := time.NewTimer(time.Hour)
		next := 0
		for surfaced < n {
			// Beats due by now (the observer's receive path).
			for next < n && offsets[next] <= now() {
				r := tr.Observe(&vlp.Frame{Pid: uint32(next + 2), Nonce: 1}, udpOrigin, now())
				tr.SetIdent(uint32(next+2), r.Epoch, 0, identity.None, next%3)
				next++
			}
			d, ok := tr.NextDeadline()
			wait := time.Hour
			if ok {
				wait = time.Duration(d - now())
			}
			if next < n {
				wait = min(wait, time.Duration(offsets[next]-now()))
			}
			timer.Reset(max(wait, 0))
			<-timer.C
			t := now()
			tr.Due(t, func(s Stall) {
				if s.Deadline > s.Surfaced {
					b.Fatalf("pid %d surfaced %v early", s.Pid, time.Duration(s.Deadline-s.Surfaced))
				}
				lags = append(lags, time.Duration(s.Surfaced-s.Deadline))
				surfaced++
			})
		}
	}
	slices.Sort(lags)
	q := func(p float64) float64 { return float64(lags[int(p*float64(len(lags)-1))]) / 1e6 }
	b.ReportMetric(q(0.5), "p50-lag-ms")
	b.ReportMetric(q(0.99), "p99-lag-ms")
	b.ReportMetric(q(1), "max-lag-ms")
}
