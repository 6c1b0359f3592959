package metrics

import (
	"cmp"
	"slices"
	"strconv"

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

// pidRow is one agent's per-pid values, snapshotted for a scrape. key
// orders rows as their decimal pid strings sort (see pidSortKey).
type pidRow struct {
	key           uint64
	beats, stalls uint64
	pid, payload  uint32
	status        vlp.Status
}

// pidSortKey maps pid to a number that orders like the decimal string of
// pid (the order a prometheus.Registry gives label values): the digits,
// left-aligned in 10 base-11 places, each digit d stored as d+1 and a
// missing place as 0, so a prefix sorts before its extensions. 11^10 fits
// in a uint64.
func pidSortKey(pid uint32) uint64 {
	var digits [10]byte
	i := len(digits)
	for {
		i--
		digits[i] = byte(pid % 10)
		pid /= 10
		if pid == 0 {
			break
		}
	}
	var key uint64
	for place := range 10 {
		key *= 11
		if j := i + place; j < len(digits) {
			key += uint64(digits[j]) + 1
		}
	}
	return key
}

// snapshot walks the table once and returns the aggregate families and,
// with per-pid series on, one row per pid sorted by label value. A pid
// listed twice (which the Source contract rules out) keeps one row.
func (g *agentGatherer) snapshot() ([]*dto.MetricFamily, []pidRow) {
	var counts [len(agentStates)]uint64
	var rows []pidRow
	tracked, capacity := 0, 0
	if g.src != nil {
		if g.perPid {
			rows = make([]pidRow, 0, max(0, g.src.Tracked()))
		}
		g.src.EachAgent(func(a AgentView) {
			if int(a.Status) < len(counts) {
				counts[a.Status]++
			}
			if g.perPid {
				rows = append(rows, pidRow{
					key: pidSortKey(a.Pid), beats: a.Beats, stalls: a.Stalls,
					pid: a.Pid, payload: a.Payload, status: a.Status,
				})
			}
		})
		tracked, capacity = g.src.Tracked(), g.src.Capacity()
	}
	slices.SortFunc(rows, func(a, b pidRow) int { return cmp.Compare(a.key, b.key) })
	rows = slices.CompactFunc(rows, func(a, b pidRow) bool { return a.key == b.key })

	stateName := "state"
	agents := make([]*dto.Metric, 0, len(agentStates))
	for _, st := range agentStatesByLabel {
		agents = append(agents, gaugeMetric(float64(counts[st]), &dto.LabelPair{Name: &stateName, Value: &agentStates[st]}))
	}
	return []*dto.MetricFamily{
		famAgents.family(agents),
		famTracked.family([]*dto.Metric{gaugeMetric(float64(tracked))}),
		famCapacity.family([]*dto.Metric{gaugeMetric(float64(capacity))}),
	}, rows
}

func (f familyMeta) family(ms []*dto.Metric) *dto.MetricFamily {
	name, help, typ := f.name, f.help, f.typ
	return &dto.MetricFamily{Name: &name, Help: &help, Type: &typ, Metric: ms}
}

func gaugeMetric(v float64, labels ...*dto.LabelPair) *dto.Metric {
	return &dto.Metric{Label: labels, Gauge: &dto.Gauge{Value: &v}}
}

// perPidFams are the four per-pid families, in the order of
// perPidFamilies' result.
var perPidFams = [...]familyMeta{famBeats, famStalls, famStatus, famPayload}

// value returns row r's sample in perPidFams[k].
func (r *pidRow) value(k int) float64 {
	switch k {
	case 0:
		return float64(r.beats)
	case 1:
		return float64(r.stalls)
	case 2:
		return float64(r.status)
	default:
		return float64(r.payload)
	}
}

// perPidFamilies builds varta_beats_total, varta_stalls_total, varta_status
// and varta_agent_payload as protobuf objects from rows (sorted and unique,
// as snapshot returns them). Every object is carved out of a few slices
// sized for the table, so a scrape makes a fixed number of allocations
// whatever the number of agents; they still cost about 1.7 KB per agent,
// which is why the HTTP handler streams the text exposition instead
// (stream.go) and uses this only for the protobuf formats.
func perPidFamilies(rows []pidRow) []*dto.MetricFamily {
	n := len(rows)
	// Label values: all pids in one string, sliced.
	buf := make([]byte, 0, 10*n)
	ends := make([]int, n)
	for i := range rows {
		buf = strconv.AppendUint(buf, uint64(rows[i].pid), 10)
		ends[i] = len(buf)
	}
	all := string(buf)
	pids := make([]string, n)
	start := 0
	for i := range rows {
		pids[i] = all[start:ends[i]]
		start = ends[i]
	}

	pidName := "pid"
	pairs := make([]dto.LabelPair, n)
	labels := make([]*dto.LabelPair, n)
	for i := range rows {
		pairs[i].Name = &pidName
		pairs[i].Value = &pids[i]
		labels[i] = &pairs[i]
	}

	// Family k uses metrics[k*n:(k+1)*n]; the four series of one pid share
	// its label slice (the encoders only read it).
	nums := make([]float64, 4*n)
	metrics := make([]dto.Metric, 4*n)
	ptrs := make([]*dto.Metric, 4*n)
	counters := make([]dto.Counter, 2*n)
	gauges := make([]dto.Gauge, 2*n)
	for i := range rows {
		lbl := labels[i : i+1 : i+1]
		for k := range 4 {
			j := k*n + i
			nums[j] = rows[i].value(k)
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
	out := make([]*dto.MetricFamily, len(perPidFams))
	for k, f := range perPidFams {
		out[k] = f.family(ptrs[k*n : (k+1)*n : (k+1)*n])
	}
	return out
}
