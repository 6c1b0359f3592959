package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
)

// BenchmarkScrapeMemory65536 measures the resident memory a scrape costs
// the real daemon: varta-watch (non-race build) with --tracker-capacity
// 65536 and per-pid series on (the default) tracks 65,536 synthetic pids
// fed over plain UDP, then is scraped a few times in a row. VmRSS and
// VmHWM of /proc/<pid>/status are read before the first scrape and after
// the last. Pids up to 65,537 need kernel.pid_max above that (the UDP
// listener refuses pids above pid_max): the benchmark raises it when it
// can (root) and restores it afterwards unless something else changed it
// meanwhile.
//
// Metrics: rss-before-MB and rss-after-MB (VmRSS), hwm-after-MB (VmHWM,
// the peak), scrape-B/agent ((VmHWM after - VmRSS before) / 65,536: what
// the scrapes added at their peak), rss-B/agent (VmRSS before / 65,536),
// scrape-ms (mean wall time of one scrape, read to the end) and
// bytes/scrape. VARTA_SCRAPE_BENCH_BIN runs another varta-watch binary
// (for example one built from an older commit) under the same procedure.
// Run:
//
//	go test -run '^$' -bench ScrapeMemory65536 -benchtime 1x ./internal/e2e/
func BenchmarkScrapeMemory65536(b *testing.B) {
	const agents = 65536
	const scrapes = 3
	raisePidMax(b, agents+2)
	for b.Loop() {
		dir := newDir(b)
		port := testsupport.FreeUDPPort(b)
		d := startScrapeBenchDaemon(b, dir, "--threshold-ms", "600000",
			"--tracker-capacity", strconv.Itoa(agents), "--udp-port", port, "--i-accept-plaintext-udp",
			"--udp-bind-addr", "127.0.0.1", "--global-beat-rate", "0", "--max-beat-rate", "0")
		beatUDPFleet(b, port, agents, udpPace{every: 200, pause: time.Millisecond, roundGap: 200 * time.Millisecond})
		time.Sleep(time.Second)
		pid := d.Cmd.Process.Pid
		rssBefore, _ := procStatusKB(b, pid)

		var size int64
		tracked := -1.0
		t0 := time.Now()
		for range scrapes {
			size, tracked = scrapeCount(b, d)
		}
		elapsed := time.Since(t0)
		rssAfter, hwmAfter := procStatusKB(b, pid)
		if tracked != agents {
			b.Fatalf("varta_watch_pids_tracked = %v after feeding %d agents", tracked, agents)
		}
		b.ReportMetric(float64(rssBefore)/1024, "rss-before-MB")
		b.ReportMetric(float64(rssAfter)/1024, "rss-after-MB")
		b.ReportMetric(float64(hwmAfter)/1024, "hwm-after-MB")
		b.ReportMetric(float64(hwmAfter-rssBefore)*1024/agents, "scrape-B/agent")
		b.ReportMetric(float64(rssBefore)*1024/agents, "rss-B/agent")
		b.ReportMetric(float64(elapsed.Milliseconds())/scrapes, "scrape-ms")
		b.ReportMetric(float64(size), "bytes/scrape")
	}
}

// startScrapeBenchDaemon starts the non-race binary (or
// $VARTA_SCRAPE_BENCH_BIN) with the metrics endpoint, no scrape rate limit
// and extra args.
func startScrapeBenchDaemon(b *testing.B, dir string, extra ...string) *daemon {
	b.Helper()
	bin := os.Getenv("VARTA_SCRAPE_BENCH_BIN")
	if bin == "" {
		bin = fastBinary(b)
	}
	d := &daemon{Daemon: testsupport.NewDaemon(b, dir), t: b}
	pa, token, tf := promArgs(b, dir)
	args := append(append([]string{"--socket", d.Socket}, extra...), pa...)
	args = append(args, "--prom-rate-limit-per-sec", "0")
	d.Run(exec.Command(bin, args...))
	d.WaitSocket(20 * time.Second)
	d.usePromAddr(token, tf)
	return d
}

// scrapeCount scrapes d once, reading the whole body, and returns its size
// and the value of varta_watch_pids_tracked.
func scrapeCount(b *testing.B, d *daemon) (int64, float64) {
	b.Helper()
	req, _ := http.NewRequest("GET", "http://"+d.promAddr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+d.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		b.Fatalf("scrape: %s: %s", resp.Status, msg)
	}
	var size int64
	tracked := -1.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		size += int64(len(sc.Bytes())) + 1
		if v, ok := strings.CutPrefix(sc.Text(), "varta_watch_pids_tracked "); ok {
			tracked, _ = strconv.ParseFloat(v, 64)
		}
	}
	if err := sc.Err(); err != nil {
		b.Fatal(err)
	}
	return size, tracked
}

// procStatusKB returns VmRSS and VmHWM of pid in KiB.
func procStatusKB(b *testing.B, pid int) (rss, hwm int64) {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			b.Fatalf("/proc/%d/status: %q", pid, l)
		}
		if k == "VmRSS" {
			rss = n
		} else {
			hwm = n
		}
	}
	if rss == 0 || hwm == 0 {
		b.Fatalf("/proc/%d/status has no VmRSS or VmHWM", pid)
	}
	return rss, hwm
}

// raisePidMax makes kernel.pid_max at least min for the benchmark and
// restores the old value at cleanup, unless the value was changed by
// someone else in between. It skips the benchmark when it cannot.
func raisePidMax(b *testing.B, min int) {
	b.Helper()
	const path = "/proc/sys/kernel/pid_max"
	raw, err := os.ReadFile(path)
	if err != nil {
		b.Skipf("kernel.pid_max: %v", err)
	}
	old, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		b.Fatalf("%s: %q", path, raw)
	}
	if old >= min {
		return
	}
	set := strconv.Itoa(min)
	if err := os.WriteFile(path, []byte(set), 0o644); err != nil {
		b.Skipf("kernel.pid_max is %d, below the %d the benchmark needs, and cannot be raised: %v", old, min, err)
	}
	b.Cleanup(func() {
		if cur, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(cur)) == set {
			os.WriteFile(path, []byte(strconv.Itoa(old)), 0o644)
		}
	})
}
