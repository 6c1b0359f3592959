package metrics_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/varta-go/varta/cmd/varta-watch/internal/identity"
	"github.com/varta-go/varta/cmd/varta-watch/internal/metrics"
	"github.com/varta-go/varta/cmd/varta-watch/internal/service"
	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/pkg/audit"
)

type fakeServices struct{ views []service.View }

func (f fakeServices) Views() []service.View      { return f.views }
func (fakeServices) Reloads() (ok, failed uint64) { return 3, 1 }
func (fakeServices) Overflow() uint64             { return 7 }
func (fakeServices) IdentityUnreadable() [identity.NumFields]uint64 {
	return [identity.NumFields]uint64{0, 5, 1}
}

func TestServiceFamilies(t *testing.T) {
	var web service.View
	web.Service, web.Agents, web.Stalls, web.GaveUp = "web", [5]uint64{2, 0, 1, 1, 3}, 9, true
	web.Outcomes[stats.OutcomeSpawned] = 3
	web.Outcomes[stats.OutcomeReapedNonzero] = 2
	web.Outcomes[stats.Refusal(audit.ReasonBackoff)] = 4
	web.Outcomes[stats.Refusal(audit.ReasonDebounced)] = 8 // not an exported per-service outcome
	opts := fixedOptions(false)
	opts.Services = fakeServices{views: []service.View{web, {Service: "other"}}}
	reg := metrics.NewRegistry(stats.New(), &fakeSource{capacity: 16}, opts)
	want := `
# HELP varta_service_gave_up 1 while the service has given up (its restart budget is exhausted), else 0.
# TYPE varta_service_gave_up gauge
varta_service_gave_up{service="other"} 0
varta_service_gave_up{service="web"} 1
# HELP varta_service_stalls_total Stalls surfaced per service.
# TYPE varta_service_stalls_total counter
varta_service_stalls_total{service="other"} 0
varta_service_stalls_total{service="web"} 9
# HELP varta_policy_reloads_total Policy file reloads (SIGHUP), by result.
# TYPE varta_policy_reloads_total counter
varta_policy_reloads_total{result="failed"} 1
varta_policy_reloads_total{result="ok"} 3
# HELP varta_service_overflow_total Stalls and recovery records counted under service="other" because --prom-max-services names were taken.
# TYPE varta_service_overflow_total counter
varta_service_overflow_total 7
# HELP varta_identity_unreadable_total Identity reads from /proc that failed (the field is "-"), by field.
# TYPE varta_identity_unreadable_total counter
varta_identity_unreadable_total{field="cgroup"} 1
varta_identity_unreadable_total{field="comm"} 0
varta_identity_unreadable_total{field="exe"} 5
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "varta_service_gave_up", "varta_service_stalls_total",
		"varta_policy_reloads_total", "varta_service_overflow_total", "varta_identity_unreadable_total"); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, lp := range m.GetLabel() {
				key += "," + lp.GetValue()
			}
			if m.GetCounter() != nil {
				got[key] = m.GetCounter().GetValue()
			} else if m.GetGauge() != nil {
				got[key] = m.GetGauge().GetValue()
			}
		}
	}
	for key, v := range map[string]float64{
		"varta_service_agents,web,ok":                                  2,
		"varta_service_agents,web,critical":                            1,
		"varta_service_agents,web,stalled":                             1,
		"varta_service_agents,web,snoozed":                             3,
		"varta_service_agents,other,ok":                                0,
		"varta_service_recoveries_total,spawned,web":                   3,
		"varta_service_recoveries_total,reaped_nonzero,web":            2,
		"varta_service_recoveries_total,refused_backoff,web":           4,
		"varta_service_recoveries_total,refused_gave_up,web":           0,
		"varta_service_recoveries_total,refused_identity_unsafe,other": 0,
	} {
		if g, ok := got[key]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", key, g, ok, v)
		}
	}
	if _, ok := got["varta_service_recoveries_total,debounced,web"]; ok {
		t.Error("debounced exported per service")
	}
}

// TestOperatorDocListsServiceMetrics keeps docs/metrics.md complete for the
// per-service families.
func TestOperatorDocListsServiceMetrics(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	opts := fixedOptions(false)
	opts.Services = fakeServices{views: []service.View{{Service: "web"}}}
	mfs, err := metrics.NewRegistry(stats.New(), &fakeSource{capacity: 1}, opts).Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		name := mf.GetName()
		if !strings.HasPrefix(name, "varta_service_") && !strings.HasPrefix(name, "varta_policy_") && !strings.HasPrefix(name, "varta_identity_") {
			continue
		}
		n++
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("docs/metrics.md does not mention `%s`", name)
		}
	}
	if n != 7 {
		t.Fatalf("%d service families, want 7", n)
	}
}
