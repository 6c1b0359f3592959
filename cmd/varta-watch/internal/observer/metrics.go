package observer

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/varta-go/varta/cmd/varta-watch/internal/metrics"
)

// startMetrics binds the metrics endpoint and prints its address on
// stdout (so that port 0 can be used).
func (o *Observer) startMetrics() error {
	if o.opts.Prom == nil {
		return nil
	}
	mo := metrics.Options{PerPid: o.opts.PromPerPid, Start: o.clk.Start(), Services: serviceMetrics{o}}
	if o.ctl != nil {
		mo.Control = o.ctl
	}
	reg := metrics.NewRegistry(o.c, metrics.FromTracker(o.tr), mo)
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
			o.warn("metrics endpoint stopped", "err", err)
		}
	}()
	o.closeFns = append(o.closeFns, func() { srv.Close(); <-done })
	o.log.Info("metrics endpoint listening", "addr", srv.Addr().String())
	return nil
}
