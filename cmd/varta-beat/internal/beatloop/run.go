package beatloop

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/varta-go/varta/pkg/agent"
	"github.com/varta-go/varta/pkg/vlp"
)

// Options configure Run.
type Options struct {
	// Interval between beats; must be positive.
	Interval time.Duration
	// Status and Payload of every beat.
	Status  vlp.Status
	Payload uint32
	// Count stops after this many beat attempts; 0 = until ctx is done.
	Count int
	// Verbose writes every outcome to Out, not only the non-Sent ones.
	Verbose bool
	// Out receives verbose lines; Errs receives the rate-limited lines about
	// beats that were not sent.
	Out, Errs io.Writer
	// Prefix starts every line written to Errs (the program name).
	Prefix string
}

// Run beats with a immediately and then every o.Interval (on an absolute
// schedule, so the period does not drift) until o.Count attempts were made or
// ctx is done. When ctx ends the loop, it sends one terminal frame.
func Run(ctx context.Context, a *agent.Agent, o Options) error {
	if o.Interval <= 0 {
		return fmt.Errorf("beat interval must be positive, got %v", o.Interval)
	}
	rep := &Reporter{W: o.Errs, Prefix: o.Prefix, Every: time.Second}
	attempts := 0
	t := time.NewTicker(o.Interval)
	defer t.Stop()
	for {
		if ctx.Err() != nil {
			break
		}
		r := a.Beat(o.Status, o.Payload)
		attempts++
		if o.Verbose && o.Out != nil {
			fmt.Fprintf(o.Out, "beat %s status %v payload %d\n", r, o.Status, o.Payload)
		}
		rep.Report("beat", r)
		if o.Count > 0 && attempts >= o.Count {
			rep.Flush()
			return nil
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
	rep.Flush()
	r := SendTerminal(a, TerminalPatience)
	if o.Verbose && o.Out != nil {
		fmt.Fprintf(o.Out, "terminal %s\n", r)
	}
	rep.Every = 0 // the last line is never suppressed
	rep.Report("terminal frame", r)
	return nil
}
