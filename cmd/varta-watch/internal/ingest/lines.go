package ingest

import (
	"strconv"
	"sync"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/events"
	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/pkg/logthrottle"
)

// Lines about refused traffic (decode, io, ctrunc, mismatch) are
// rate-limited per kind, so that a flood of garbage cannot fill the disk
// with the events file: LineBurst lines at once, then LineRate a second.
// Lines over the limit are counted (varta_events_suppressed_total) and,
// at most once per SummaryEvery per kind, a summary line of the same kind
// says how many were left out ("suppressed N decode lines"; pid "-").
// Beat, stall and eviction lines are never rate-limited here.
const (
	LineBurst    = 64
	LineRate     = 10
	SummaryEvery = int64(5e9)
)

// lineLimiter is shared by every transport's goroutine.
type lineLimiter struct {
	mu    sync.Mutex
	kinds [stats.NumLineKinds]lineBucket
}

type lineBucket struct {
	lim         logthrottle.Limiter // its count: suppressed since the last summary
	lastSummary int64
	started     bool
}

var lineKinds = [stats.NumLineKinds]events.Kind{events.KindDecode, events.KindIO, events.KindCtrunc, events.KindMismatch}

func lineKindOf(k events.Kind) (stats.LineKind, bool) {
	for i, v := range lineKinds {
		if v == k {
			return stats.LineKind(i), true
		}
	}
	return 0, false
}

// anomaly emits an events-file line about refused traffic, subject to the
// per-kind rate limit.
func (p *Pipeline) anomaly(ev events.Event) {
	k, ok := lineKindOf(ev.Kind)
	if !ok {
		p.emit.Emit(ev)
		return
	}
	now := int64(ev.Ns)
	l := &p.lines
	l.mu.Lock()
	b := &l.kinds[k]
	if !b.started {
		b.started, b.lim, b.lastSummary = true, logthrottle.New(LineBurst, time.Second/LineRate), now
	}
	write := b.lim.Allow(now)
	if !write {
		p.c.EventsSuppressed[k].Add(1)
	}
	summary := p.summaryLocked(k, now)
	l.mu.Unlock()
	if write {
		p.emit.Emit(ev)
	}
	if summary.Text != "" {
		p.emit.Emit(summary)
	}
}

// summaryLocked returns the summary line due for kind k at now, if any.
func (p *Pipeline) summaryLocked(k stats.LineKind, now int64) events.Event {
	b := &p.lines.kinds[k]
	if b.lim.Suppressed() == 0 || now-b.lastSummary < SummaryEvery {
		return events.Event{}
	}
	text := "suppressed " + strconv.FormatUint(b.lim.TakeSuppressed(), 10) + " " + k.Label() + " lines (rate limit " +
		strconv.Itoa(LineRate) + "/s)"
	b.lastSummary = now
	return events.Event{Kind: lineKinds[k], Ns: uint64(now), Text: text}
}

// FlushSuppressed writes the summary lines that are due at now (stall
// clock), so that the count of a flood that stopped is not held back
// until the next refused datagram. The observer calls it every tick.
func (p *Pipeline) FlushSuppressed(now int64) {
	var due [stats.NumLineKinds]events.Event
	p.lines.mu.Lock()
	for k := range due {
		due[k] = p.summaryLocked(stats.LineKind(k), now)
	}
	p.lines.mu.Unlock()
	for _, ev := range due {
		if ev.Text != "" {
			p.emit.Emit(ev)
		}
	}
}
