package metrics_test

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/varta-go/varta/cmd/varta-watch/internal/metrics"
	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/pkg/vlp"
)

var perPidNames = []string{"varta_beats_total", "varta_stalls_total", "varta_status", "varta_agent_payload", "varta_agents"}

// referenceCollector exports the tracker's families the generic way, with
// const metrics on a plain prometheus.Registry. The fast path must produce
// the same exposition.
type referenceCollector struct{ src metrics.Source }

var (
	refBeats = prometheus.NewDesc("varta_beats_total",
		"Frames accepted from the pid since its tracker slot was created.", []string{"pid"}, nil)
	refStalls = prometheus.NewDesc("varta_stalls_total",
		"Stalls surfaced for the pid since its tracker slot was created.", []string{"pid"}, nil)
	refStatus = prometheus.NewDesc("varta_status",
		"Last status of the pid: 0 ok, 1 degraded, 2 critical, 3 stall.", []string{"pid"}, nil)
	refPayload = prometheus.NewDesc("varta_agent_payload",
		"Last payload the pid reported.", []string{"pid"}, nil)
	refAgents = prometheus.NewDesc("varta_agents",
		"Tracked agents by state (stalled = a surfaced stall not yet ended by a beat).", []string{"state"}, nil)
)

func (r referenceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- refBeats
	ch <- refStalls
	ch <- refStatus
	ch <- refPayload
	ch <- refAgents
}

func (r referenceCollector) Collect(ch chan<- prometheus.Metric) {
	var counts [4]float64
	r.src.EachAgent(func(a metrics.AgentView) {
		counts[a.Status]++
		pid := strconv.FormatUint(uint64(a.Pid), 10)
		ch <- prometheus.MustNewConstMetric(refBeats, prometheus.CounterValue, float64(a.Beats), pid)
		ch <- prometheus.MustNewConstMetric(refStalls, prometheus.CounterValue, float64(a.Stalls), pid)
		ch <- prometheus.MustNewConstMetric(refStatus, prometheus.GaugeValue, float64(a.Status), pid)
		ch <- prometheus.MustNewConstMetric(refPayload, prometheus.GaugeValue, float64(a.Payload), pid)
	})
	for i, st := range []string{"ok", "degraded", "critical", "stalled"} {
		ch <- prometheus.MustNewConstMetric(refAgents, prometheus.GaugeValue, counts[i], st)
	}
}

// TestPerPidMatchesConstMetrics compares the fast per-pid path with the
// generic const-metric path on random tables, byte for byte.
func TestPerPidMatchesConstMetrics(t *testing.T) {
	for _, n := range []int{1, 7, 1000} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(n), 42))
			seen := map[uint32]bool{}
			var agents []metrics.AgentView
			for len(agents) < n {
				pid := rng.Uint32N(4_194_304) + 2
				if seen[pid] {
					continue
				}
				seen[pid] = true
				agents = append(agents, metrics.AgentView{
					Pid: pid, Beats: rng.Uint64N(1 << 40), Stalls: rng.Uint64N(5),
					Status: vlp.Status(rng.IntN(4)), Payload: rng.Uint32(),
				})
			}
			src := &fakeSource{capacity: n}
			src.set(agents...)
			ref := prometheus.NewRegistry()
			ref.MustRegister(referenceCollector{src})
			want, err := testutil.GatherAndFormat(ref, expfmt.TypeTextPlain, perPidNames...)
			if err != nil {
				t.Fatal(err)
			}
			got, err := testutil.GatherAndFormat(metrics.NewRegistry(stats.New(), src, metrics.Options{PerPid: true}),
				expfmt.TypeTextPlain, perPidNames...)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("fast path differs from const metrics:\n got %.600s\nwant %.600s", got, want)
			}
		})
	}
}

// TestPerPidDuplicateAndOrder feeds a Source that breaks its contract by
// listing a pid twice: the scrape still succeeds, with one series per pid,
// in label order.
func TestPerPidDuplicateAndOrder(t *testing.T) {
	src := &fakeSource{capacity: 8}
	src.set(
		metrics.AgentView{Pid: 100, Beats: 1},
		metrics.AgentView{Pid: 9, Beats: 2},
		metrics.AgentView{Pid: 10, Beats: 3},
		metrics.AgentView{Pid: 9, Beats: 2},
	)
	reg := metrics.NewRegistry(stats.New(), src, metrics.Options{PerPid: true})
	text, err := testutil.GatherAndFormat(reg, expfmt.TypeTextPlain, "varta_beats_total")
	if err != nil {
		t.Fatal(err)
	}
	want := `# HELP varta_beats_total Frames accepted from the pid since its tracker slot was created.
# TYPE varta_beats_total counter
varta_beats_total{pid="10"} 3
varta_beats_total{pid="100"} 1
varta_beats_total{pid="9"} 2
`
	if string(text) != want {
		t.Fatalf("got\n%s\nwant\n%s", text, want)
	}
}

// TestTrackerFamiliesAreReserved checks that nothing else can register a
// family the tracker gatherer exports.
func TestTrackerFamiliesAreReserved(t *testing.T) {
	for _, name := range []string{"varta_beats_total", "varta_agents", "varta_watch_pids_tracked"} {
		t.Run(name, func(t *testing.T) {
			reg := metrics.NewRegistry(stats.New(), nil, metrics.Options{})
			err := reg.Register(prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "duplicate"}))
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("registering a second %s: %v", name, err)
			}
		})
	}
}

// TestConcurrentScrapes gathers from several goroutines while the table
// changes (run with -race).
func TestConcurrentScrapes(t *testing.T) {
	src := &fakeSource{capacity: 64}
	reg := metrics.NewRegistry(stats.New(), src, metrics.Options{PerPid: true})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			var agents []metrics.AgentView
			for p := range i % 50 {
				agents = append(agents, metrics.AgentView{Pid: uint32(p + 2), Beats: uint64(i)})
			}
			src.set(agents...)
		}
	}()
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			for range 50 {
				if _, err := reg.Gather(); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	<-done
}
