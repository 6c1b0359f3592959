package metrics_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
	used := regexp.MustCompile(`\bvarta_[a-z0-9_]+`).FindAllString(string(rules), -1)
	if len(used) < 10 {
		t.Fatalf("found only %d metric references in the rules", len(used))
	}
	for _, name := range used {
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if trimmed, ok := strings.CutSuffix(name, suffix); ok && exported[trimmed] {
				base = trimmed
			}
		}
		if !exported[base] {
			t.Errorf("rules reference %s, which the observer does not export", name)
		}
	}
}

// snoozedWeb is a control socket with one snooze in force.
type snoozedWeb struct{}

func (snoozedWeb) ControlRequests() []metrics.ControlRequest {
	return []metrics.ControlRequest{{Endpoint: "snooze", Code: 200, Count: 1}}
}
func (snoozedWeb) SnoozedServices() []string { return []string{"web"} }
