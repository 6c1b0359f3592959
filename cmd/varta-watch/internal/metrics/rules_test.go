package metrics_test

import (
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/varta-go/varta/cmd/varta-watch/internal/metrics"
	"github.com/varta-go/varta/cmd/varta-watch/internal/service"
	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
)

// lookPath finds a tool of the Debian prometheus package or fails the test.
func lookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found in PATH (%v): install the Debian package: apt-get install -y prometheus", name, err)
	}
	return p
}

// TestPrometheusRules checks deploy/prometheus/varta.rules.yml with promtool
// and runs its unit tests (varta.rules.test.yml).
func TestPrometheusRules(t *testing.T) {
	promtool := lookPath(t, "promtool")
	dir := filepath.Join(repoRoot(t), "deploy", "prometheus")
	tests := []struct {
		name string
		args []string
	}{
		{"check rules", []string{"check", "rules", "varta.rules.yml"}},
		{"test rules", []string{"test", "rules", "varta.rules.test.yml"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(promtool, tc.args...)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("promtool %s: %v\n%s", strings.Join(tc.args, " "), err, out)
			}
			if !strings.Contains(string(out), "SUCCESS") {
				t.Fatalf("promtool %s did not report SUCCESS:\n%s", strings.Join(tc.args, " "), out)
			}
		})
	}
}

// TestRulesUseExportedMetrics catches a misspelt metric in the rules, which
// the rule unit tests cannot (their input series would carry the same
// typo).
func TestRulesUseExportedMetrics(t *testing.T) {
	rules, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "prometheus", "varta.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	exported := exportedFamilies(t)
	used := regexp.MustCompile(`\bvarta_[a-z0-9_]+`).FindAllString(string(rules), -1)
	if len(used) < 10 {
		t.Fatalf("found only %d metric references in the rules", len(used))
	}
	for _, name := range used {
		if base := familyOf(exported, name); !exported[base] {
			t.Errorf("rules reference %s, which the observer does not export", name)
		}
	}
}

// exportedFamilies returns the name of every metric family the observer
// exports with per-pid series, services and the control socket on.
func exportedFamilies(t *testing.T) map[string]bool {
	t.Helper()
	src := &fakeSource{capacity: 1}
	src.set(metrics.AgentView{Pid: 1})
	mfs, err := metrics.NewRegistry(stats.New(), src, metrics.Options{PerPid: true,
		Services: fakeServices{views: []service.View{{Service: "web"}}}, Control: snoozedWeb{}}).Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, mf := range mfs {
		exported[mf.GetName()] = true
	}
	return exported
}

// familyOf strips a histogram's _bucket, _sum or _count suffix from name
// when the rest is an exported family.
func familyOf(exported map[string]bool, name string) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if trimmed, ok := strings.CutSuffix(name, suffix); ok && exported[trimmed] {
			return trimmed
		}
	}
	return name
}

// notOnDashboard are the varta_* families the Grafana dashboard leaves out
// on purpose: the per-pid families other than varta_beats_total (absent
// with --prom-per-pid=false and one series per agent; the dashboard shows
// the aggregates varta_agents and varta_stalls_surfaced_total, and the
// events file names the pids).
var notOnDashboard = map[string]string{
	"varta_status":        "per pid: varta_agents{state} is the aggregate",
	"varta_agent_payload": "per pid: an application value, not the observer's",
	"varta_stalls_total":  "per pid: varta_stalls_surfaced_total is the aggregate",
}

// TestDashboardCoversExportedMetrics: every metric the Grafana dashboard
// queries is exported (a misspelt name evaluates to nothing, without an
// error, in TestDashboardAndRulesQueries), and every varta_* family the
// observer exports is on the dashboard or in notOnDashboard with a reason.
func TestDashboardCoversExportedMetrics(t *testing.T) {
	dash, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "grafana", "varta.json"))
	if err != nil {
		t.Fatal(err)
	}
	exported := exportedFamilies(t)
	used := map[string]bool{}
	for _, name := range regexp.MustCompile(`\b(?:varta|go|process)_[a-z0-9_]+`).FindAllString(string(dash), -1) {
		base := familyOf(exported, name)
		used[base] = true
		if !exported[base] {
			t.Errorf("the dashboard queries %s, which the observer does not export", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(exported)) {
		if !strings.HasPrefix(name, "varta_") || used[name] {
			continue
		}
		if _, ok := notOnDashboard[name]; !ok {
			t.Errorf("%s is exported but not on deploy/grafana/varta.json (add a panel, or a reason to notOnDashboard)", name)
		}
	}
	for name := range notOnDashboard {
		if used[name] {
			t.Errorf("%s is on the dashboard and in notOnDashboard", name)
		}
	}
}

// snoozedWeb is a control socket with one snooze in force.
type snoozedWeb struct{}

func (snoozedWeb) ControlRequests() []metrics.ControlRequest {
	return []metrics.ControlRequest{{Endpoint: "snooze", Code: 200, Count: 1}}
}
func (snoozedWeb) SnoozedServices() []string { return []string{"web"} }
