package promtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Timeouts of the helper. Prometheus needs a few seconds to start on a
// loaded two-core machine.
const (
	ReadyTimeout = 60 * time.Second
	stopTimeout  = 30 * time.Second
)

// Prometheus is a running Prometheus child process.
type Prometheus struct {
	// URL is the base URL of its HTTP API, e.g. http://127.0.0.1:40123.
	URL string
	// Job is the scrape job name of the target.
	Job string

	cmd    *exec.Cmd
	logf   string
	done   chan struct{}
	client *http.Client
}

// Sample is one element of an instant-vector query result.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// StartPrometheus starts Prometheus scraping target (host:port) at path
// /metrics every second, authenticating with the bearer token in
// tokenFile, and waits until it is ready. The child is stopped (SIGTERM,
// then SIGKILL after 30 s) when the test ends. It fails the test when the
// prometheus binary is missing.
func StartPrometheus(t testing.TB, target, tokenFile string) *Prometheus {
	t.Helper()
	return StartPrometheusWith(t, target, fmt.Sprintf(`    authorization:
      type: Bearer
      credentials_file: %q
`, tokenFile))
}

// StartPrometheusWith is StartPrometheus with the scrape job's
// authentication and transport given as YAML lines at the job's level
// (indented four spaces), for example scheme: https, tls_config and
// basic_auth.
func StartPrometheusWith(t testing.TB, target, jobYAML string) *Prometheus {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("prometheus not found in PATH (%v): install the Debian package: apt-get install -y prometheus", err)
	}
	dir := t.TempDir()
	const job = "varta-watch"
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: %s
    metrics_path: /metrics
%s    static_configs:
      - targets: [%q]
`, job, jobYAML, target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatalf("write prometheus config: %v", err)
	}
	// The free port is found by binding and releasing it; another process
	// may take it in between, so a start that dies early is retried.
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		p, err := start(bin, cfgPath, dir, attempt)
		if err == nil {
			p.Job = job
			t.Cleanup(func() {
				if err := p.Stop(); err != nil {
					t.Errorf("stop prometheus: %v", err)
				}
			})
			if err := p.waitReady(ReadyTimeout); err != nil {
				t.Fatalf("prometheus not ready: %v\n%s", err, p.logTail())
			}
			return p
		}
		lastErr = err
	}
	t.Fatalf("start prometheus: %v", lastErr)
	return nil
}

func start(bin, cfgPath, dir string, attempt int) (*Prometheus, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, fmt.Sprintf("prometheus-%d.log", attempt))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create prometheus log: %w", err)
	}
	defer logFile.Close() // the child keeps its own descriptor
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, fmt.Sprintf("data-%d", attempt)),
		"--web.listen-address="+addr,
		"--log.level=info",
	)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	setParentDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &Prometheus{
		URL:    "http://" + addr,
		cmd:    cmd,
		logf:   logPath,
		done:   make(chan struct{}),
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	// Give a port clash a moment to show as an early exit.
	select {
	case <-p.done:
		return nil, fmt.Errorf("prometheus exited at start (%v):\n%s", cmd.ProcessState, p.logTail())
	case <-time.After(200 * time.Millisecond):
	}
	return p, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls /-/ready until it answers 200.
func (p *Prometheus) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-p.done:
			return fmt.Errorf("prometheus exited (%v)", p.cmd.ProcessState)
		default:
		}
		resp, err := p.client.Get(p.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no 200 from %s/-/ready within %v (last error %v)", p.URL, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Stop sends SIGTERM and waits for the child to exit, killing it after 30 s.
// It is idempotent.
func (p *Prometheus) Stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal prometheus: %w", err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("prometheus ignored SIGTERM for %v and was killed", stopTimeout)
	}
}

// Query runs an instant query and returns its vector result. A failed
// request or a non-vector result fails the test.
func (p *Prometheus) Query(t testing.TB, expr string) []Sample {
	t.Helper()
	samples, err := p.query(expr)
	if err != nil {
		t.Fatalf("query %q: %v", expr, err)
	}
	return samples
}

func (p *Prometheus) query(expr string) ([]Sample, error) {
	resp, err := p.client.Get(p.URL + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("decode response (HTTP %d): %w: %.300s", resp.StatusCode, err, body)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("status %q: %s", r.Status, r.Error)
	}
	if r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("result type %q, want vector", r.Data.ResultType)
	}
	out := make([]Sample, 0, len(r.Data.Result))
	for _, s := range r.Data.Result {
		str, ok := s.Value[1].(string)
		if !ok {
			return nil, fmt.Errorf("sample value %v is not a string", s.Value[1])
		}
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("sample value %q: %w", str, err)
		}
		out = append(out, Sample{Labels: s.Metric, Value: v})
	}
	return out, nil
}

// WaitForValue polls expr every 500 ms until it returns exactly one sample
// with value want, and fails the test after timeout with the last result,
// the scrape target's health and the end of the Prometheus log.
func (p *Prometheus) WaitForValue(t testing.TB, expr string, want float64, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last string
	for {
		samples, err := p.query(expr)
		switch {
		case err != nil:
			last = err.Error()
		case len(samples) == 1 && samples[0].Value == want:
			return
		default:
			last = fmt.Sprintf("%+v", samples)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s did not reach %v within %v; last result %s\ntargets: %s\n%s",
				expr, want, timeout, last, p.targets(), p.logTail())
		case <-p.done:
			t.Fatalf("prometheus exited while waiting for %s:\n%s", expr, p.logTail())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// targets returns the health and last error of the active targets, for
// failure messages.
func (p *Prometheus) targets() string {
	resp, err := p.client.Get(p.URL + "/api/v1/targets?state=active")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			ActiveTargets []struct {
				ScrapeURL string `json:"scrapeUrl"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, tg := range r.Data.ActiveTargets {
		fmt.Fprintf(&b, "%s health=%s lastError=%q; ", tg.ScrapeURL, tg.Health, tg.LastError)
	}
	return b.String()
}

// logTail returns the last lines of the Prometheus log.
func (p *Prometheus) logTail() string {
	b, err := os.ReadFile(p.logf)
	if err != nil {
		return "(no prometheus log: " + err.Error() + ")"
	}
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return "prometheus log (tail):\n" + string(b)
}
