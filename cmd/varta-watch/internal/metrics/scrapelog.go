package metrics

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/varta-go/varta/pkg/logthrottle"
)

// scrapeErrorPrefix starts the line the scrape handler logs (in promhttp's
// words) for every metric family it fails to send; a scraper that goes
// away mid-response produces one such line per family.
var scrapeErrorPrefix = []byte("error encoding and sending metric family:")

// scrapeErrorWindow: repeats within this long of the last reported line
// are counted, not logged.
const scrapeErrorWindow = time.Second

// scrapeErrorFilter passes log lines through to w, except that lines about
// failing to send a metric family are reported once per aborted scrape: the
// first is written, repeats within scrapeErrorWindow of it are counted, and
// the next line written says how many were suppressed. It is safe for
// concurrent use.
type scrapeErrorFilter struct {
	w   io.Writer
	now func() time.Time

	mu  sync.Mutex
	lim logthrottle.Limiter
}

func newScrapeErrorFilter(w io.Writer) *scrapeErrorFilter {
	return &scrapeErrorFilter{w: w, now: time.Now, lim: logthrottle.Every(scrapeErrorWindow)}
}

func (f *scrapeErrorFilter) Write(p []byte) (int, error) {
	// log.Logger writes one line per call, prefix first.
	if !bytes.Contains(p, scrapeErrorPrefix) {
		return f.w.Write(p)
	}
	f.mu.Lock()
	if !f.lim.AllowAt(f.now()) {
		f.mu.Unlock()
		return len(p), nil
	}
	n := f.lim.TakeSuppressed()
	f.mu.Unlock()
	line := bytes.TrimRight(p, "\n")
	if n > 0 {
		line = fmt.Appendf(bytes.Clone(line), " (%d similar lines suppressed)", n)
	}
	if _, err := f.w.Write(append(line, '\n')); err != nil {
		return 0, err
	}
	return len(p), nil
}
