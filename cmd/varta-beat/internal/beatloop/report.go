package beatloop

import (
	"fmt"
	"io"
	"time"

	"github.com/varta-go/varta/pkg/agent"
)

// Reporter writes one line per non-Sent outcome, at most one line per
// Every; lines that were held back are counted in the next line written.
type Reporter struct {
	W      io.Writer
	Prefix string
	Every  time.Duration

	last       time.Time
	suppressed int
}

// Report writes a line for r (what is a "beat" or a "terminal frame") if r
// is not Sent and the rate limit allows.
func (p *Reporter) Report(what string, r agent.Result) {
	if r.Sent() {
		return
	}
	now := time.Now()
	if !p.last.IsZero() && now.Sub(p.last) < p.Every {
		p.suppressed++
		return
	}
	p.last = now
	more := ""
	if p.suppressed > 0 {
		more = fmt.Sprintf(" (%d similar lines suppressed)", p.suppressed)
		p.suppressed = 0
	}
	fmt.Fprintf(p.W, "%s%s %s%s\n", p.Prefix, what, describe(r), more)
}

// describe renders a non-Sent result, e.g. "nonce 4 dropped: NoObserver
// (connection refused)".
func describe(r agent.Result) string {
	if r.Nonce != 0 {
		return fmt.Sprintf("nonce %d %v", r.Nonce, r)
	}
	return r.String()
}

// Flush writes how many lines were held back since the last one, if any.
func (p *Reporter) Flush() {
	if p.suppressed > 0 {
		fmt.Fprintf(p.W, "%s%d similar lines suppressed\n", p.Prefix, p.suppressed)
		p.suppressed = 0
	}
}
