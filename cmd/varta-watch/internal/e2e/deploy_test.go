package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/varta-go/varta/cmd/varta-watch/internal/metrics/promtest"
	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
)

// These tests check what deploy/ ships against the real tools: systemd's
// unit verifier, the daemon's watchdog, a real Prometheus, dpkg.

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

// needTool returns the path of a tool the deployment tests need, failing
// with the Debian package that provides it.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found in PATH (%v): apt-get install -y %s (.ci/run does)", name, err, pkg)
	}
	return p
}

// unitSetting returns the value of the first Key= line of a unit file.
func unitSetting(t *testing.T, path, key string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), key+"="); ok {
			return v
		}
	}
	t.Fatalf("%s has no %s= line", path, key)
	return ""
}

// verifyUnits runs systemd-analyze verify on unit files and fails on a
// non-zero exit or any complaint about them.
func verifyUnits(t *testing.T, env []string, units ...string) {
	t.Helper()
	tool := needTool(t, "systemd-analyze", "systemd")
	args := []string{"verify"}
	if _, err := exec.LookPath("man"); err != nil {
		args = append(args, "--man=no")
	}
	cmd := exec.Command(tool, append(args, units...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify %v: %v\n%s", units, err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "varta") {
			t.Errorf("systemd-analyze verify: %s", l)
		}
	}
}

// TestSystemdUnitsVerify: systemd accepts both shipped units. ExecStart is
// pointed at the binary under test (the packaged path is checked by
// TestDebPackage) and the man page the units name is looked up in the
// repository's man/.
func TestSystemdUnitsVerify(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	dir := t.TempDir()
	svc, err := os.ReadFile(filepath.Join(root, "deploy/systemd/varta-watch.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(svc), "ExecStart=/usr/bin/varta-watch\n") {
		t.Fatal("varta-watch.service does not start /usr/bin/varta-watch")
	}
	svc = []byte(strings.ReplaceAll(string(svc), "ExecStart=/usr/bin/varta-watch", "ExecStart="+binPath))
	sock, err := os.ReadFile(filepath.Join(root, "deploy/systemd/varta-watch.socket"))
	if err != nil {
		t.Fatal(err)
	}
	man8 := filepath.Join(dir, "man", "man8")
	if err := os.MkdirAll(man8, 0o755); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(root, "man/varta-watch.8"))
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		filepath.Join(dir, "varta-watch.service"): svc,
		filepath.Join(dir, "varta-watch.socket"):  sock,
		filepath.Join(man8, "varta-watch.8"):      page,
	} {
		if err := os.WriteFile(name, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	verifyUnits(t, []string{"MANPATH=" + filepath.Join(dir, "man")},
		filepath.Join(dir, "varta-watch.socket"), filepath.Join(dir, "varta-watch.service"))

	// The socket unit and the defaults file name the same socket.
	listen := unitSetting(t, filepath.Join(root, "deploy/systemd/varta-watch.socket"), "ListenDatagram")
	def, err := os.ReadFile(filepath.Join(root, "deploy/default/varta-watch"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(def), "\nVARTA_WATCH_SOCKET="+listen+"\n") ||
		!strings.Contains(string(svc), "Environment=VARTA_WATCH_SOCKET="+listen+"\n") {
		t.Fatalf("ListenDatagram=%s is not the VARTA_WATCH_SOCKET of the service and the defaults file", listen)
	}
	// The unit keeps the daemon's state across restarts, in a directory the
	// sandbox lets it write (StateDirectory=varta is /var/lib/varta).
	if v := unitSetting(t, filepath.Join(root, "deploy/systemd/varta-watch.service"), "StateDirectory"); v != "varta" ||
		!strings.Contains(string(svc), "\nEnvironment=VARTA_WATCH_STATE_DIR=/var/lib/varta/state\n") ||
		!strings.Contains(string(def), "\nVARTA_WATCH_STATE_DIR=/var/lib/varta/state\n") {
		t.Fatalf("StateDirectory=%s: the service and the defaults file must set VARTA_WATCH_STATE_DIR=/var/lib/varta/state", v)
	}
	if v := unitSetting(t, filepath.Join(root, "deploy/systemd/varta-watch.socket"), "PassCredentials"); v != "yes" {
		t.Fatalf("PassCredentials=%s: beats queued before the daemon runs would carry no credentials", v)
	}
}

// TestUnitWatchdogAgreesWithDaemon runs the daemon with the unit's
// WatchdogSec as $WATCHDOG_USEC against a fake NOTIFY_SOCKET and checks
// that WATCHDOG=1 comes at least every WatchdogSec/2 (plus scheduling
// slack), from READY=1 on: systemd would never kill a healthy daemon.
func TestUnitWatchdogAgreesWithDaemon(t *testing.T) {
	// Parallel although it measures the gaps between pings: the daemon
	// pings every third of the timeout, and the limit is half of it plus 1 s.
	t.Parallel()
	unit := filepath.Join(repoRoot(t), "deploy/systemd/varta-watch.service")
	if v := unitSetting(t, unit, "Type"); v != "notify" {
		t.Fatalf("Type=%s, want notify", v)
	}
	if v := unitSetting(t, unit, "NotifyAccess"); v != "main" {
		t.Fatalf("NotifyAccess=%s, want main", v)
	}
	w, err := time.ParseDuration(unitSetting(t, unit, "WatchdogSec"))
	if err != nil || w < 2*time.Second {
		t.Fatalf("WatchdogSec=%s (%v): want a duration of at least 2s", unitSetting(t, unit, "WatchdogSec"), err)
	}
	dir := newDir(t)
	n := listenNotify(t, dir)
	startIn(t, dir, []string{"NOTIFY_SOCKET=" + n.path, "WATCHDOG_USEC=" + strconv.FormatInt(w.Microseconds(), 10)},
		"--threshold-ms", "1000")
	ready := n.expect(t, 30*time.Second, "READY=1")
	const slack = time.Second
	end := ready.at.Add(w + w/4)
	last := ready.at
	var pings int
	for {
		left := time.Until(end)
		if left <= 0 {
			break
		}
		select {
		case m := <-n.msgs:
			if !strings.Contains(m.text, "WATCHDOG=1") {
				continue
			}
			if gap := m.at.Sub(last); gap > w/2+slack {
				t.Fatalf("WATCHDOG=1 after %v without one; WatchdogSec=%v wants one every %v", gap, w, w/2)
			}
			last = m.at
			pings++
		case <-time.After(left):
		}
	}
	if gap := end.Sub(last); gap > w/2+slack {
		t.Fatalf("no WATCHDOG=1 in the last %v; WatchdogSec=%v wants one every %v", gap, w, w/2)
	}
	if pings < 2 {
		t.Fatalf("%d pings in %v", pings, w+w/4)
	}
}

// dashboardExprs returns every PromQL expression of the Grafana dashboard
// by panel title, with the dashboard variables replaced the way Grafana
// would for "all observers of job varta-watch", plus the variable queries
// rewritten as PromQL.
func dashboardExprs(t *testing.T, path, job string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Type       string `json:"type"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	subst := strings.NewReplacer(`$job`, job, `$instance`, ".+", `$__rate_interval`, "1m")
	out := map[string][]string{}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			e := subst.Replace(tg.Expr)
			if strings.Contains(e, "$") {
				t.Errorf("panel %q: unknown variable in %q", p.Title, tg.Expr)
			}
			out[p.Title] = append(out[p.Title], e)
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.+), *([a-z_]+)\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Fatalf("variable %s: query %q is not label_values(SELECTOR, LABEL)", v.Name, v.Definition)
		}
		out["variable "+v.Name] = []string{fmt.Sprintf("count by (%s) (%s)", m[2], subst.Replace(m[1]))}
	}
	return out
}

// ruleExprs returns the expression of every rule in a Prometheus rule file.
func ruleExprs(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Record string `yaml:"record"`
				Alert  string `yaml:"alert"`
				Expr   string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := map[string]string{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out[r.Record+r.Alert] = r.Expr
		}
	}
	return out
}

// mayBeEmpty are the panels that need what the test's observer does not
// see: every other panel and both variables must return data from an
// observer that has seen a beat, a stall that it recovered, a refused frame
// and a snooze, and saves its state.
var mayBeEmpty = map[string]string{
	"Services that gave up": "needs a service whose restart budget is exhausted",
}

// TestDashboardAndRulesQueries evaluates every PromQL expression of the
// Grafana dashboard and of the rules against a real Prometheus scraping a
// real varta-watch: each must evaluate without error, and every panel but
// those in mayBeEmpty must return data (the panels the issue names among
// them).
func TestDashboardAndRulesQueries(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	dir := newDir(t)
	d := startWithMetrics(t, "--threshold-ms", "200", "--recovery-exec", "/bin/true {pid}",
		"--recovery-audit-file", filepath.Join(dir, "audit.log"),
		"--state-dir", filepath.Join(dir, "state"), "--state-save-interval-ms", "500")
	if out, errOut, code := cli(t, nil, "snooze", "dashboard-test", "--for", "10m", "--reason", "dashboard test", "--socket", d.Socket); code != 0 {
		t.Fatalf("snooze: exit %d %s %s", code, out, errOut)
	}
	s := d.dial()
	s.beat(1)
	s.raw(make([]byte, 7)) // a refused frame (wrong size)
	d.waitMetric(`varta_agents{state="stalled"}`, 1)
	d.waitMetric(`varta_recovery_outcomes_total{outcome="reaped_zero"}`, 1)
	p := promtest.StartPrometheus(t, d.promAddr, d.tokenPath)
	// rate() needs two samples in its window.
	testsupport.Eventually(t, 90*time.Second, "four scrapes", func() bool {
		v := p.Query(t, `count_over_time(varta_watch_uptime_seconds[1m])`)
		return len(v) == 1 && v[0].Value >= 4
	})

	panels := dashboardExprs(t, filepath.Join(root, "deploy/grafana/varta.json"), p.Job)
	for _, title := range slices.Sorted(func(yield func(string) bool) {
		for k := range panels {
			if !yield(k) {
				return
			}
		}
	}) {
		empty := true
		for _, e := range panels[title] {
			if len(p.Query(t, e)) > 0 { // Query fails the test on an evaluation error
				empty = false
			}
		}
		if why, ok := mayBeEmpty[title]; empty && !ok {
			t.Errorf("panel %q returned no data: %q", title, panels[title])
		} else if empty {
			t.Logf("panel %q returned no data (allowed: it %s)", title, why)
		}
	}
	for _, title := range []string{"Agents by state", "Stalls surfaced", "Recoveries by outcome",
		"Refused recoveries by reason", "Stalls by service", "Ingest rate", "Rejected frames by reason",
		"Observer up", "Seconds since the last loop tick", "variable job", "variable instance"} {
		if _, ok := panels[title]; !ok {
			t.Errorf("core panel %q is not in the dashboard", title)
		}
	}
	for title := range mayBeEmpty {
		if _, ok := panels[title]; !ok {
			t.Errorf("mayBeEmpty names %q, which is not in the dashboard", title)
		}
	}
	rules := ruleExprs(t, filepath.Join(root, "deploy/prometheus/varta.rules.yml"))
	if len(rules) < 10 {
		t.Fatalf("only %d rules found", len(rules))
	}
	for _, e := range rules {
		p.Query(t, e) // fails the test on an evaluation error
	}
}

// TestDebPackage builds the Debian package from the binaries this test
// binary built (make deb-package, nfpm), installs it with dpkg, runs the
// installed programs, and removes it again: everything goes but the
// conffile, which goes on purge. It changes the system, so it runs only as
// root with dpkg present, and not where a package named varta is
// installed already.
func TestDebPackage(t *testing.T) {
	// Parallel although it installs the package system-wide: no other test
	// runs the installed programs or reads the installed files.
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("installs a package: needs root")
	}
	dpkg, err := exec.LookPath("dpkg")
	if err != nil {
		t.Skip("dpkg not installed")
	}
	if exec.Command("dpkg-query", "-W", "varta").Run() == nil {
		t.Skip("a package named varta is installed; not touching it")
	}
	root := repoRoot(t)
	dist := t.TempDir()
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	const version = "0.0.1-test"
	run("make", "--no-print-directory", "deb-package", "BIN="+filepath.Dir(binPath), "DIST="+dist, "VERSION="+version)
	debs, _ := filepath.Glob(filepath.Join(dist, "varta_"+version+"_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("make deb-package made %v, want one dist/varta_%s_<arch>.deb", debs, version)
	}
	t.Cleanup(func() { exec.Command(dpkg, "--purge", "varta").Run() })
	run(dpkg, "-i", debs[0])
	files := strings.Fields(run("dpkg-query", "-L", "varta"))

	for _, f := range []string{"/usr/bin/varta-watch", "/usr/bin/varta-beat", "/usr/bin/varta-audit",
		"/usr/lib/systemd/system/varta-watch.service", "/usr/lib/systemd/system/varta-watch.socket",
		"/etc/default/varta-watch", "/usr/share/varta/prometheus/varta.rules.yml",
		"/usr/share/varta/grafana/varta.json", "/usr/lib/varta/restart-unit"} {
		if !slices.Contains(files, f) {
			t.Errorf("package does not install %s", f)
		}
	}
	if conf := run("dpkg-query", "-W", "-f=${Conffiles}", "varta"); !strings.Contains(conf, "/etc/default/varta-watch") {
		t.Errorf("/etc/default/varta-watch is not a conffile: %q", conf)
	}
	if out := run("/usr/bin/varta-watch", "--version"); !strings.Contains(out, "varta-watch") {
		t.Errorf("varta-watch --version: %q", out)
	}
	// man-db is installed by .ci/run: the page must be found, not skipped.
	if out := strings.TrimSpace(run(needTool(t, "man", "man-db"), "-w", "varta-watch")); out != "/usr/share/man/man8/varta-watch.8.gz" {
		t.Errorf("man -w varta-watch: %q", out)
	}
	// The installed units, unmodified, with the installed binary and page.
	verifyUnits(t, nil, "/usr/lib/systemd/system/varta-watch.socket", "/usr/lib/systemd/system/varta-watch.service")

	// A beat from the installed varta-beat into the installed varta-watch.
	dir := newDir(t)
	sockPath, events := filepath.Join(dir, "varta.sock"), filepath.Join(dir, "events.tsv")
	w := exec.Command("/usr/bin/varta-watch", "--socket", sockPath, "--threshold-ms", "60000", "--export-file", events)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	wdone := make(chan error, 1)
	go func() { wdone <- w.Wait() }()
	defer func() { w.Process.Kill(); <-wdone }()
	testsupport.Eventually(t, 20*time.Second, "installed varta-watch socket", func() bool { _, err := os.Stat(sockPath); return err == nil })
	beat := exec.Command("/usr/bin/varta-beat", "once", "--socket", sockPath)
	if out, err := beat.CombinedOutput(); err != nil {
		t.Fatalf("installed varta-beat once: %v: %s", err, out)
	}
	testsupport.Eventually(t, 10*time.Second, "the beat in the events file", func() bool {
		b, _ := os.ReadFile(events)
		return strings.Contains(string(b), "\tbeat\t"+strconv.Itoa(beat.Process.Pid)+"\t")
	})
	w.Process.Signal(syscall.SIGTERM)

	run(dpkg, "-r", "varta")
	for _, f := range files {
		fi, err := os.Lstat(f)
		switch {
		case f == "/etc/default/varta-watch":
			if err != nil {
				t.Errorf("dpkg -r removed the conffile %s: %v", f, err)
			}
		case err == nil && !fi.IsDir():
			t.Errorf("dpkg -r left %s", f)
		}
	}
	run(dpkg, "--purge", "varta")
	if _, err := os.Lstat("/etc/default/varta-watch"); !os.IsNotExist(err) {
		t.Errorf("dpkg --purge left the conffile: %v", err)
	}
}

// fleetBlocks returns the yaml code blocks of docs/fleet.md.
func fleetBlocks(t *testing.T, root string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docs/fleet.md"))
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	var cur *strings.Builder
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case cur == nil && l == "```yaml":
			cur = &strings.Builder{}
		case cur != nil && l == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(l + "\n")
		}
	}
	return blocks
}

// TestFleetDocConfigs: the configuration snippets of docs/fleet.md work.
// Every Prometheus configuration (the scrape job with discovery and the
// rules, the TLS job, federation, remote write) passes promtool check
// config, with the files it names created in a temporary directory and the
// rule file the package installs; the file_sd targets parse; the
// Alertmanager route and inhibition name alerts and severities the shipped
// rules have.
func TestFleetDocConfigs(t *testing.T) {
	t.Parallel()
	promtool := needTool(t, "promtool", "prometheus")
	root := repoRoot(t)
	dir := t.TempDir()
	rulesFile := filepath.Join(root, "deploy/prometheus/varta.rules.yml")
	absPath := regexp.MustCompile(`/(etc|usr|var)/[A-Za-z0-9_.*/-]+`)
	// localize points every absolute path into dir (the shipped rule file
	// to the repository's) and creates the files that are not globs.
	localize := func(block string) string {
		return absPath.ReplaceAllStringFunc(block, func(p string) string {
			if p == "/usr/share/varta/prometheus/varta.rules.yml" {
				return rulesFile
			}
			local := filepath.Join(dir, p)
			if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(p, "*") {
				if err := os.WriteFile(local, []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			return local
		})
	}
	var promConfigs, targets, alertmanager int
	alerts := map[string]bool{}
	severities := map[string]bool{}
	rb, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?m)^\s*- alert: (\S+)$`).FindAllStringSubmatch(string(rb), -1) {
		alerts[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`(?m)^\s*severity: (\S+)$`).FindAllStringSubmatch(string(rb), -1) {
		severities[m[1]] = true
	}
	for i, block := range fleetBlocks(t, root) {
		first, _, _ := strings.Cut(block, "\n")
		switch {
		case strings.HasPrefix(block, "# alertmanager.yml"):
			alertmanager++
			var am map[string]any
			if err := yaml.Unmarshal([]byte(block), &am); err != nil {
				t.Fatalf("block %d (%s): %v", i, first, err)
			}
			for _, m := range regexp.MustCompile(`alertname[=!]~?"([^"]+)"`).FindAllStringSubmatch(block, -1) {
				for _, name := range strings.Split(m[1], "|") {
					if name != "Varta.*" && !alerts[name] {
						t.Errorf("alertmanager.yml names alert %s, which varta.rules.yml does not have", name)
					}
				}
			}
			for _, m := range regexp.MustCompile(`severity="([^"]+)"`).FindAllStringSubmatch(block, -1) {
				if !severities[m[1]] {
					t.Errorf("alertmanager.yml routes severity %s, which no rule sets", m[1])
				}
			}
		case strings.HasPrefix(block, "# /etc/prometheus/targets/"):
			targets++
			var groups []struct {
				Targets []string          `yaml:"targets"`
				Labels  map[string]string `yaml:"labels"`
			}
			if err := yaml.Unmarshal([]byte(block), &groups); err != nil || len(groups) == 0 || len(groups[0].Targets) == 0 {
				t.Errorf("block %d (%s): not a file_sd target list: %v", i, first, err)
			}
		case strings.Contains(block, "scrape_configs:") || strings.Contains(block, "remote_write:") ||
			strings.Contains(block, "\n  - job_name:"):
			promConfigs++
			cfg := localize(block)
			if !strings.Contains(cfg, "scrape_configs:") && !strings.Contains(cfg, "remote_write:") {
				cfg = "scrape_configs:\n" + cfg // a job shown on its own
			}
			path := filepath.Join(dir, fmt.Sprintf("prometheus-%d.yml", i))
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(promtool, "check", "config", path).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "SUCCESS") {
				t.Errorf("block %d (%s): promtool check config: %v\n%s\n%s", i, first, err, out, cfg)
			}
		}
	}
	if promConfigs < 4 || targets != 1 || alertmanager != 1 {
		t.Fatalf("found %d Prometheus configurations, %d target files, %d Alertmanager configurations in docs/fleet.md; want at least 4, 1, 1",
			promConfigs, targets, alertmanager)
	}
}
