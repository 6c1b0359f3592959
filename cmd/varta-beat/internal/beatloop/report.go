package beatloop

import (
	"fmt"
	"io"
	"time"

	"github.com/varta-go/varta/pkg/agent"
	"github.com/varta-go/varta/pkg/logthrottle"
)

// Reporter writes one line per non-Sent outcome, at most one line per
// Every; lines that were held back are counted in the next line written.
type Reporter struct {
	W      io.Writer
	Prefix string
	Every  time.Duration

	lim     logthrottle.Limiter
	limInit bool
}

// Report writes a line for r (what is a "beat" or a "terminal frame") if r
// is not Sent and the rate limit allows.
func (p *Reporter) Report(what string, r agent.Result) {
	if r.Sent() {
		return
	}
	if !p.limInit {
		p.lim, p.limInit = logthrottle.Every(p.Every), true
	}
	if !p.lim.AllowAt(time.Now()) {
		return
	}
	more := ""
	if n := p.lim.TakeSuppressed(); n > 0 {
		more = fmt.Sprintf(" (%d similar lines suppressed)", n)
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
	if n := p.lim.TakeSuppressed(); n > 0 {
		fmt.Fprintf(p.W, "%s%d similar lines suppressed\n", p.Prefix, n)
	}
}
