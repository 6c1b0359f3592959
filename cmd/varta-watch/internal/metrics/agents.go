package metrics

import (
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/varta-go/varta/pkg/vlp"
)

// familyMeta names and explains one of the tracker's families.
type familyMeta struct {
	name, help string
	typ        dto.MetricType
	labels     []string
}

// The tracker's families. They are built by agentGatherer, not by a
// prometheus.Collector.
var (
	famBeats = familyMeta{"varta_beats_total",
		"Frames accepted from the pid since its tracker slot was created.", dto.MetricType_COUNTER, []string{"pid"}}
	famStalls = familyMeta{"varta_stalls_total",
		"Stalls surfaced for the pid since its tracker slot was created.", dto.MetricType_COUNTER, []string{"pid"}}
	famStatus = familyMeta{"varta_status",
		"Last status of the pid: 0 ok, 1 degraded, 2 critical, 3 stall.", dto.MetricType_GAUGE, []string{"pid"}}
	famPayload = familyMeta{"varta_agent_payload",
		"Last payload the pid reported.", dto.MetricType_GAUGE, []string{"pid"}}
	famAgents = familyMeta{"varta_agents",
		"Tracked agents by state (stalled = a surfaced stall not yet ended by a beat).", dto.MetricType_GAUGE, []string{"state"}}
	famTracked = familyMeta{"varta_watch_pids_tracked",
		"Occupied tracker slots.", dto.MetricType_GAUGE, nil}
	famCapacity = familyMeta{"varta_tracker_capacity",
		"Size of the tracker table (--tracker-capacity).", dto.MetricType_GAUGE, nil}
)

// Agent states of varta_agents, indexed by vlp.Status.
var agentStates = [...]string{
	vlp.StatusOk:       "ok",
	vlp.StatusDegraded: "degraded",
	vlp.StatusCritical: "critical",
	vlp.StatusStall:    "stalled",
}

// agentStatesByLabel lists the states in label order, the order a
// prometheus.Registry would export them in.
var agentStatesByLabel = [...]vlp.Status{vlp.StatusCritical, vlp.StatusDegraded, vlp.StatusOk, vlp.StatusStall}

// agentGatherer builds the tracker's families from one walk of
// Source.EachAgent per scrape. Per-pid series exist only for the pids the
// Source lists at that moment, so a pid whose slot was evicted or retired
// disappears from the next scrape.
type agentGatherer struct {
	src    Source
	perPid bool
}

func newAgentGatherer(src Source, perPid bool) *agentGatherer {
	return &agentGatherer{src: src, perPid: perPid}
}

// reservation returns a collector that describes the tracker's families
// and collects nothing. Registered on the embedded registry, it makes any
// other collector that would export the same names fail to register.
func (g *agentGatherer) reservation() prometheus.Collector {
	var descs reservedDescs
	for _, f := range []familyMeta{famBeats, famStalls, famStatus, famPayload, famAgents, famTracked, famCapacity} {
		descs = append(descs, prometheus.NewDesc(f.name, f.help, f.labels, nil))
	}
	return descs
}

type reservedDescs []*prometheus.Desc

func (r reservedDescs) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range r {
		ch <- d
	}
}

func (reservedDescs) Collect(chan<- prometheus.Metric) {}

// gather walks the table once and returns the tracker's families.
func (g *agentGatherer) gather() []*dto.MetricFamily {
	var counts [len(agentStates)]uint64
	var views []AgentView
	tracked, capacity := 0, 0
	if g.src != nil {
		if g.perPid {
			views = make([]AgentView, 0, max(0, g.src.Tracked()))
		}
		g.src.EachAgent(func(a AgentView) {
			if int(a.Status) < len(counts) {
				counts[a.Status]++
			}
			if g.perPid {
				views = append(views, a)
			}
		})
		tracked, capacity = g.src.Tracked(), g.src.Capacity()
	}

	stateName := "state"
	agents := make([]*dto.Metric, 0, len(agentStates))
	for _, st := range agentStatesByLabel {
		agents = append(agents, gaugeMetric(float64(counts[st]), &dto.LabelPair{Name: &stateName, Value: &agentStates[st]}))
	}
	out := []*dto.MetricFamily{
		famAgents.family(agents),
		famTracked.family([]*dto.Metric{gaugeMetric(float64(tracked))}),
		famCapacity.family([]*dto.Metric{gaugeMetric(float64(capacity))}),
	}
	if len(views) > 0 {
		out = append(out, perPidFamilies(views)...)
	}
	return out
}

func (f familyMeta) family(ms []*dto.Metric) *dto.MetricFamily {
	name, help, typ := f.name, f.help, f.typ
	return &dto.MetricFamily{Name: &name, Help: &help, Type: &typ, Metric: ms}
}

func gaugeMetric(v float64, labels ...*dto.LabelPair) *dto.Metric {
	return &dto.Metric{Label: labels, Gauge: &dto.Gauge{Value: &v}}
}

// perPidFamilies builds varta_beats_total, varta_stalls_total, varta_status
// and varta_agent_payload for views, each ordered by label value as a
// prometheus.Registry orders its output. A pid listed twice (which the
// Source contract rules out) is exported once. Every object is carved out
// of a few slices sized for the table, so a scrape makes a fixed number of
// allocations whatever the number of agents.
func perPidFamilies(views []AgentView) []*dto.MetricFamily {
	// Label values: all pids in one string, sliced.
	buf := make([]byte, 0, 10*len(views))
	ends := make([]int, len(views))
	for i, v := range views {
		buf = strconv.AppendUint(buf, uint64(v.Pid), 10)
		ends[i] = len(buf)
	}
	all := string(buf)
	type row struct {
		pid string
		v   AgentView
	}
	rows := make([]row, len(views))
	start := 0
	for i, v := range views {
		rows[i] = row{all[start:ends[i]], v}
		start = ends[i]
	}
	slices.SortFunc(rows, func(a, b row) int { return strings.Compare(a.pid, b.pid) })
	rows = slices.CompactFunc(rows, func(a, b row) bool { return a.pid == b.pid })
	n := len(rows)

	pidName := "pid"
	pairs := make([]dto.LabelPair, n)
	labels := make([]*dto.LabelPair, n)
	for i := range rows {
		pairs[i].Name = &pidName
		pairs[i].Value = &rows[i].pid
		labels[i] = &pairs[i]
	}

	// Family k uses metrics[k*n:(k+1)*n]; the four series of one pid share
	// its label slice (the encoders only read it).
	nums := make([]float64, 4*n)
	metrics := make([]dto.Metric, 4*n)
	ptrs := make([]*dto.Metric, 4*n)
	counters := make([]dto.Counter, 2*n)
	gauges := make([]dto.Gauge, 2*n)
	for i, r := range rows {
		lbl := labels[i : i+1 : i+1]
		nums[i], nums[n+i], nums[2*n+i], nums[3*n+i] =
			float64(r.v.Beats), float64(r.v.Stalls), float64(r.v.Status), float64(r.v.Payload)
		for k := range 4 {
			j := k*n + i
			m := &metrics[j]
			m.Label = lbl
			if k < 2 {
				counters[j].Value = &nums[j]
				m.Counter = &counters[j]
			} else {
				gauges[j-2*n].Value = &nums[j]
				m.Gauge = &gauges[j-2*n]
			}
			ptrs[j] = m
		}
	}
	return []*dto.MetricFamily{
		famBeats.family(ptrs[0:n:n]),
		famStalls.family(ptrs[n : 2*n : 2*n]),
		famStatus.family(ptrs[2*n : 3*n : 3*n]),
		famPayload.family(ptrs[3*n : 4*n : 4*n]),
	}
}
