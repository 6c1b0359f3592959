package metrics_test

import (
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/metrics"
	"github.com/varta-go/varta/cmd/varta-watch/internal/metrics/promtest"
	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/pkg/vlp"
)

// TestRealPrometheusScrapes points a real Prometheus server at the metrics
// endpoint, authenticated with the token file, and waits until a per-pid
// series and an aggregate reach Prometheus's query API.
func TestRealPrometheusScrapes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Prometheus server")
	}
	c := stats.New()
	src := &fakeSource{capacity: 64}
	src.set(metrics.AgentView{Pid: 4242, Beats: 7, Status: vlp.StatusOk, Payload: 3})
	reg := metrics.NewRegistry(c, src, metrics.Options{PerPid: true, Start: time.Now()})
	tokenFile := writeToken(t)
	s, err := metrics.NewServer(metrics.ServerOptions{
		Addr:            "127.0.0.1:0",
		TokenFile:       tokenFile,
		RateLimitPerSec: 5,
		RateLimitBurst:  10,
		Logf:            t.Logf,
	}, reg, c)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		if err := <-served; err != nil {
			t.Error(err)
		}
	})

	prom := promtest.StartPrometheus(t, s.Addr().String(), tokenFile)
	prom.WaitForValue(t, `varta_beats_total{pid="4242"}`, 7, 60*time.Second)
	prom.WaitForValue(t, `varta_agents{state="ok"}`, 1, 10*time.Second)
	prom.WaitForValue(t, `up{job="varta-watch"}`, 1, 10*time.Second)
	if n := c.PromAuthFailures.Load(); n != 0 {
		t.Errorf("Prometheus's scrapes produced %d auth failures", n)
	}
	if n := c.PromConnectionsDropped[stats.PromDropRateLimit].Load(); n != 0 {
		t.Errorf("a 1 s scrape interval was rate-limited %d times at 5/s", n)
	}
	got := prom.Query(t, `varta_status{pid="4242"}`)
	if len(got) != 1 || got[0].Value != 0 || got[0].Labels["instance"] != s.Addr().String() {
		t.Fatalf("varta_status{pid=\"4242\"}: %+v", got)
	}
	if err := prom.Stop(); err != nil {
		t.Fatal(err)
	}
}
