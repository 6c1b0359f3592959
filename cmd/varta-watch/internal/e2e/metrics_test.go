package e2e

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/metrics/promtest"
	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
)

// promArgs returns the flags for a metrics endpoint on a free loopback
// port with a fresh token in dir; d.usePromAddr picks up the address the
// daemon prints.
func promArgs(t testing.TB, dir string) (args []string, token, path string) {
	path, token = testsupport.TokenFile(t, dir)
	return []string{"--prom-addr", "127.0.0.1:0", "--prom-token-file", path}, token, path
}

// usePromAddr waits for the bound metrics address on the daemon's stdout.
func (d *daemon) usePromAddr(token, tokenPath string) {
	d.t.Helper()
	d.token, d.tokenPath = token, tokenPath
	d.promAddr = d.PromAddr()
}

// startWithMetrics starts varta-watch with the metrics endpoint on a free
// loopback port.
func startWithMetrics(t *testing.T, extra ...string) *daemon {
	t.Helper()
	dir := newDir(t)
	args, token, tf := promArgs(t, dir)
	d := startIn(t, dir, nil, append(args, extra...)...)
	d.usePromAddr(token, tf)
	return d
}

// scrape returns the metrics exposition as "series value" pairs; an
// error or a status other than 200 fails the test.
func (d *daemon) scrape() map[string]float64 {
	d.t.Helper()
	c := testsupport.NewMetricsClient(d.promAddr, d.token)
	code, m, err := c.Scrape()
	if err != nil && code == -1 {
		// One retry after a transport error (seen as a rare connection
		// reset under a heavily loaded parallel run), logged so that it
		// stays visible; a second failure, or any HTTP error, fails.
		d.t.Logf("scrape retried after a transport error: %v", err)
		time.Sleep(50 * time.Millisecond)
		_, m, err = c.Scrape()
	}
	if err != nil {
		d.t.Fatal(err)
	}
	return m
}

// metric returns one series' value (0 when absent) from a fresh scrape.
func (d *daemon) metric(series string) float64 { return d.scrape()[series] }

// waitMetric polls until series has value want.
func (d *daemon) waitMetric(series string, want float64) {
	d.t.Helper()
	var got float64
	if !testsupport.Poll(15*time.Second, func() bool { got = d.metric(series); return got == want }) {
		d.t.Fatalf("%s = %v, want %v", series, got, want)
	}
}

func TestMetricsCountRefusals(t *testing.T) {
	t.Parallel()
	d := startWithMetrics(t, "--threshold-ms", "60000")
	first := d.scrape()
	for _, s := range []string{
		`varta_decode_errors_total{kind="bad_magic"}`, `varta_rate_limited_total{reason="global"}`,
		`varta_recovery_outcomes_total{outcome="spawned"}`, `varta_agents{state="stalled"}`,
		"varta_truncated_datagrams_total", "varta_watch_pids_tracked", "varta_tracker_capacity",
	} {
		if _, ok := first[s]; !ok {
			t.Errorf("series %s missing from the first scrape", s)
		}
	}
	if first["varta_tracker_capacity"] != 4096 {
		t.Errorf("capacity %v", first["varta_tracker_capacity"])
	}
	s := d.dial()
	b := make([]byte, 33)
	s.raw(b[:31])
	s.raw(b)
	s.raw(nil)
	s.raw(withPid(mustHex(t, "56410200020000000000000000000000010000000000000000000000e4116baa"), uint32(os.Getpid()+1)))
	bad := mustHex(t, "56410200020000000000000000000000010000000000000000000000e4116baa")
	bad[0] = 0
	s.raw(bad)
	s.beat(1)
	d.waitMetric("varta_truncated_datagrams_total", 3)
	d.waitMetric("varta_frame_auth_failures_total", 1)
	d.waitMetric(`varta_decode_errors_total{kind="bad_magic"}`, 1)
	d.waitMetric(fmt.Sprintf(`varta_beats_total{pid="%d"}`, os.Getpid()), 1)
	d.waitMetric(`varta_agents{state="ok"}`, 1)
	d.waitMetric("varta_watch_pids_tracked", 1)
	if v := d.metric("varta_observer_uds_rcvbuf_bytes"); v < 1<<20 {
		t.Errorf("granted receive buffer %v", v)
	}
}

func TestMetricsStallAndLag(t *testing.T) {
	t.Parallel()
	d := startWithMetrics(t, "--threshold-ms", "100")
	d.dial().beat(1)
	pid := strconv.Itoa(os.Getpid())
	d.waitMetric(`varta_stalls_total{pid="`+pid+`"}`, 1)
	m := d.scrape()
	if m[`varta_status{pid="`+pid+`"}`] != 3 || m[`varta_agents{state="stalled"}`] != 1 {
		t.Fatalf("status %v stalled %v", m[`varta_status{pid="`+pid+`"}`], m[`varta_agents{state="stalled"}`])
	}
	if m["varta_stall_detection_lag_seconds_count"] != 1 {
		t.Fatalf("lag histogram count %v", m["varta_stall_detection_lag_seconds_count"])
	}
	// The first agent of an empty tracker wakes the control loop, which
	// otherwise sleeps until its next housekeeping tick (1 s): its stall
	// comes at its deadline, not up to 900 ms later at that tick.
	if lag := m["varta_stall_detection_lag_seconds_sum"]; lag > 0.5 {
		t.Fatalf("the first agent's stall surfaced %.3f s after its deadline: the loop was not woken by its first beat", lag)
	}
}

func TestMetricsPerPidOff(t *testing.T) {
	t.Parallel()
	d := startWithMetrics(t, "--threshold-ms", "60000", "--prom-per-pid=false")
	d.dial().beat(1)
	d.waitMetric(`varta_agents{state="ok"}`, 1)
	for k := range d.scrape() {
		if strings.HasPrefix(k, "varta_beats_total{") {
			t.Fatalf("per-pid series %s exported with --prom-per-pid=false", k)
		}
	}
}

func TestMetricsSeriesRemovedOnEviction(t *testing.T) {
	t.Parallel()
	d := startWithMetrics(t, "--threshold-ms", "50", "--tracker-capacity", "1")
	d.dial().beat(1)
	self := fmt.Sprintf(`varta_beats_total{pid="%d"}`, os.Getpid())
	d.waitMetric(`varta_agents{state="stalled"}`, 1)
	// The new agent beats until the first one (silent for more than
	// 10 × threshold) may be evicted and its frames are admitted.
	_, pid := d.agent(t.Context(), "self", "every:20ms", 0, nil)
	testsupport.Eventually(t, 15*time.Second, "the new agent's beats", func() bool {
		return d.metric(fmt.Sprintf(`varta_beats_total{pid="%d"}`, pid)) >= 1
	})
	if _, ok := d.scrape()[self]; ok {
		t.Fatal("evicted pid's series still exported")
	}
	d.waitMetric("varta_tracker_evicted_total", 1)
}

func TestMetricsAuthOnRealEndpoint(t *testing.T) {
	t.Parallel()
	d := startWithMetrics(t, "--threshold-ms", "60000", "--prom-rate-limit-per-sec", "0")
	for _, tc := range []struct {
		header string
		want   int
	}{
		{"", 401}, {"Basic " + d.token, 401}, {"Bearer " + strings.Repeat("0", 64), 401},
		{"Bearer " + d.token[:63], 401}, {"bearer " + d.token, 200}, {"Bearer " + d.token, 200},
	} {
		req, _ := http.NewRequest("GET", "http://"+d.promAddr+"/metrics", nil)
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("Authorization %q: %d, want %d", tc.header, resp.StatusCode, tc.want)
		}
		if tc.want == 401 && resp.Header.Get("WWW-Authenticate") != `Bearer realm="varta"` {
			t.Errorf("WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
		}
	}
	if v := d.metric("varta_prom_auth_failures_total"); v != 4 {
		t.Fatalf("auth failures %v, want 4", v)
	}
}

// TestRealPrometheusScrapesDaemon runs a real Prometheus server against
// the real binary and waits until it has stored the sender's beats.
func TestRealPrometheusScrapesDaemon(t *testing.T) {
	t.Parallel()
	d := startWithMetrics(t, "--threshold-ms", "60000")
	s := d.dial()
	for i := uint64(1); i <= 4; i++ {
		s.beat(i)
	}
	p := promtest.StartPrometheus(t, d.promAddr, d.tokenPath)
	p.WaitForValue(t, fmt.Sprintf(`varta_beats_total{pid="%d"}`, os.Getpid()), 4, 90*time.Second)
}
