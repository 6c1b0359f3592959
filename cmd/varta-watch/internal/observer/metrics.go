package observer

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/varta-go/varta/cmd/varta-watch/internal/metrics"
	"github.com/varta-go/varta/cmd/varta-watch/internal/tracker"
)

// trackerSource exposes the tracker to the metrics registry; EachAgent is
// lock-free.
type trackerSource struct{ tr *tracker.Tracker }

func (s trackerSource) EachAgent(fn func(metrics.AgentView)) {
	s.tr.EachAgent(func(v tracker.AgentView) { fn(metrics.AgentView(v)) })
}
func (s trackerSource) Tracked() int  { return s.tr.Tracked() }
func (s trackerSource) Capacity() int { return s.tr.Capacity() }

// startMetrics binds the metrics endpoint and prints its address on
// stdout (so that port 0 can be used).
func (o *Observer) startMetrics() error {
	if o.opts.Prom == nil {
		return nil
	}
	reg := metrics.NewRegistry(o.c, trackerSource{o.tr}, metrics.Options{PerPid: o.opts.PromPerPid, Start: o.clk.Start()})
	so := *o.opts.Prom
	if so.Logf == nil {
		so.Logf = o.logf
	}
	srv, err := metrics.NewServer(so, reg, o.c)
	if err != nil {
		return fmt.Errorf("metrics endpoint: %w", err)
	}
	fmt.Fprintln(o.opts.Stdout, srv.Addr().String())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.log.Warn("metrics endpoint stopped", "err", err)
		}
	}()
	o.closeFns = append(o.closeFns, func() { srv.Close(); <-done })
	o.log.Info("metrics endpoint listening", "addr", srv.Addr().String())
	return nil
}
