package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkStallDetectionLagMixedThresholds is BenchmarkStallDetectionLag
// with three thresholds at once, end to end: real agent processes over the
// Unix socket (UDP agents have no identity, so no policy rule can name
// them), named by three policy rules on their comm, each rule with its own
// threshold. The agents are varta-beat load children started from three
// copies of varta-beat named after their rule; when the load ends they
// fall silent together, and each stall's lag is taken against the
// agent's own rule threshold from the observer's events file. A stall
// surfaced before its deadline fails the benchmark.
//
// VARTA_BENCH_MIXED_AGENTS sets the agents per rule (default 100: every
// agent is a process of a few MiB).
func BenchmarkStallDetectionLagMixedThresholds(b *testing.B) {
	perRule := 100
	if v := os.Getenv("VARTA_BENCH_MIXED_AGENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("VARTA_BENCH_MIXED_AGENTS=%q: want a positive number", v)
		}
		perRule = n
	}
	rules := []struct {
		comm      string
		threshold time.Duration
	}{{"vb-fast", 200 * time.Millisecond}, {"vb-mid", 350 * time.Millisecond}, {"vb-slow", 500 * time.Millisecond}}
	for b.Loop() {
		dir := newDir(b)
		var pol strings.Builder
		pol.WriteString("rules:\n")
		for _, r := range rules {
			exe := filepath.Join(dir, r.comm)
			copyExecutable(b, beatPath, exe)
			fmt.Fprintf(&pol, "  - name: %s\n    match: {comm: %q}\n    threshold: %dms\n    recovery: none\n",
				r.comm, r.comm, r.threshold.Milliseconds())
		}
		polFile := filepath.Join(dir, "policy.yml")
		if err := os.WriteFile(polFile, []byte(pol.String()), 0o600); err != nil {
			b.Fatal(err)
		}
		events := filepath.Join(dir, "events.tsv")
		d := startFast(b, dir, false, "--threshold-ms", "5000", "--policy-file", polFile,
			"--tracker-capacity", "16384", "--uds-rcvbuf-bytes", strconv.Itoa(8<<20),
			"--max-beat-rate", "0", "--export-file", events, "--export-format", "json")

		// Each load beats 10 times a second for 3 s, then its children exit.
		loads := make([]*exec.Cmd, len(rules))
		for i, r := range rules {
			loads[i] = exec.Command(filepath.Join(dir, r.comm), "load", "--socket", d.Socket,
				"--agents", strconv.Itoa(perRule), "--rate", "10", "--duration", "3s")
			if out, err := os.Create(filepath.Join(dir, r.comm+".out")); err == nil {
				loads[i].Stdout, loads[i].Stderr = out, out
				defer out.Close()
			}
			if err := loads[i].Start(); err != nil {
				b.Fatal(err)
			}
		}
		for i, l := range loads {
			if err := l.Wait(); err != nil {
				out, _ := os.ReadFile(filepath.Join(dir, rules[i].comm+".out"))
				b.Fatalf("%s load: %v\n%s", rules[i].comm, err, out)
			}
		}

		// The JSON events file names each stall's service (its rule),
		// hence its threshold.
		threshold := map[string]time.Duration{}
		for _, r := range rules {
			threshold[r.comm] = r.threshold
		}
		want := perRule * len(rules)
		type stall struct {
			ns      uint64
			service string
		}
		lastBeat, stalls := map[int]uint64{}, map[int]stall{}
		deadline := time.Now().Add(60 * time.Second)
		for len(stalls) < want && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
			clear(lastBeat)
			clear(stalls)
			raw, _ := os.ReadFile(events)
			for _, l := range strings.Split(string(raw), "\n") {
				var e struct {
					NS      uint64  `json:"observer_ns"`
					Kind    string  `json:"kind"`
					Pid     int     `json:"pid"`
					Service *string `json:"service"`
				}
				if json.Unmarshal([]byte(l), &e) != nil {
					continue
				}
				switch e.Kind {
				case "beat":
					lastBeat[e.Pid] = e.NS
				case "stall":
					svc := ""
					if e.Service != nil {
						svc = *e.Service
					}
					stalls[e.Pid] = stall{e.NS, svc}
				}
			}
		}
		if len(stalls) != want {
			b.Fatalf("%d stalls surfaced for %d agents", len(stalls), want)
		}
		lags := make([]float64, 0, want)
		perService := map[string]int{}
		for pid, s := range stalls {
			th, ok := threshold[s.service]
			if !ok {
				b.Fatalf("pid %d: stall of service %q, not one of the rules (identity not resolved?)", pid, s.service)
			}
			perService[s.service]++
			lag := int64(s.ns) - int64(lastBeat[pid]) - int64(th)
			if lag < 0 {
				b.Fatalf("pid %d (%s): stall surfaced %v before its deadline", pid, s.service, time.Duration(-lag))
			}
			lags = append(lags, float64(lag)/1e6)
		}
		for _, r := range rules {
			if perService[r.comm] != perRule {
				b.Fatalf("%d stalls for %s, want %d", perService[r.comm], r.comm, perRule)
			}
		}
		slices.Sort(lags)
		b.ReportMetric(lags[len(lags)/2], "p50-ms")
		b.ReportMetric(lags[len(lags)*99/100], "p99-ms")
		b.ReportMetric(lags[len(lags)-1], "max-ms")
		d.Stop(syscall.SIGTERM)
	}
}

// copyExecutable copies the file src to dst with mode 0755.
func copyExecutable(b *testing.B, src, dst string) {
	b.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		b.Fatal(err)
	}
}
