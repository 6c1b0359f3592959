package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/varta-go/varta/pkg/audit"
)

// pageRows bounds how many rows one text table holds: a longer listing is
// printed as several tables, so that memory stays bounded.
const pageRows = 50_000

// Lister writes records as they stream in: a table (text) or a JSON array.
type Lister struct {
	w     io.Writer
	f     Format
	loc   *time.Location
	rows  [][]string
	count int
	err   error
}

// NewLister starts a listing on w; times are shown in loc.
func NewLister(w io.Writer, f Format, loc *time.Location) *Lister {
	return &Lister{w: w, f: f, loc: loc}
}

// Count returns the number of records listed so far.
func (l *Lister) Count() int { return l.count }

// Add lists one record.
func (l *Lister) Add(pos audit.Position, r *audit.Record) {
	if l.err != nil {
		return
	}
	if l.f == JSON {
		sep := ",\n  "
		if l.count == 0 {
			sep = "[\n  "
		}
		b, err := json.Marshal(view(pos, r, l.loc))
		if err == nil {
			_, err = fmt.Fprintf(l.w, "%s%s", sep, b)
		}
		l.err = err
		l.count++
		return
	}
	l.rows = append(l.rows, row(r, l.loc))
	l.count++
	if len(l.rows) == pageRows {
		l.flush()
	}
}

func (l *Lister) flush() {
	if len(l.rows) == 0 || l.err != nil {
		return
	}
	t := newTable(l.w, "rllrl")
	t.Header("seq", "time", "kind", "agent pid", "details")
	l.err = t.Bulk(l.rows)
	if l.err == nil {
		l.err = t.Render()
	}
	l.rows = l.rows[:0]
}

// Close finishes the listing.
func (l *Lister) Close() error {
	if l.f == JSON {
		if l.err == nil {
			end := "\n]\n"
			if l.count == 0 {
				end = "[]\n"
			}
			_, l.err = io.WriteString(l.w, end)
		}
		return l.err
	}
	l.flush()
	if l.err == nil && l.count == 0 {
		_, l.err = io.WriteString(l.w, "no matching records\n")
	}
	return l.err
}

func row(r *audit.Record, loc *time.Location) []string {
	agent := ""
	if pid, ok := r.AgentPid(); ok {
		agent = u32(pid)
	}
	return []string{u64(r.Seq), formatMs(r.WallclockMs(), loc), r.Kind.String(), agent, details(r, loc)}
}

func details(r *audit.Record, loc *time.Location) string {
	switch r.Kind {
	case audit.KindBoot:
		b := &r.Boot
		s := fmt.Sprintf("%s, daemon pid %d", b.Reason, b.DaemonPid)
		if b.HasPrevChain {
			s += ", prev " + b.PrevChain.String()[:16] + "…"
		}
		return s
	case audit.KindSpawn:
		s := &r.Spawn
		return fmt.Sprintf("child %d: %s %s (%s, argv %s)", s.ChildPid, s.Mode, safe(s.Program), safe(s.Source), bytesText(s.TemplateLen))
	case audit.KindComplete:
		c := &r.Complete
		how := string(c.Outcome)
		switch {
		case c.Signal > 0:
			how += ", signal " + strconv.Itoa(c.Signal)
		case c.ExitCode >= 0:
			how += ", exit " + strconv.Itoa(c.ExitCode)
		}
		s := fmt.Sprintf("child %d %s after %s; %s", c.ChildPid, how,
			durationText(time.Duration(min(c.DurationNs, 1<<63-1))), outputText(c))
		if c.Truncated {
			s += " (truncated)"
		}
		return s
	case audit.KindRefused:
		return "refused: " + safe(r.Refused.Reason)
	case audit.KindControl:
		return controlDetails(&r.Control, loc)
	}
	return ""
}

// controlDetails describes an operator action: "uid 0: snooze web until
// 2024-05-01 14:30:00.000 +02:00: deploy 4711".
func controlDetails(x *audit.ControlRecord, loc *time.Location) string {
	s := "uid " + u32(x.UID) + ": " + safe(x.Action)
	if x.Target != "" {
		s += " " + safe(x.Target)
	}
	switch {
	case x.Forever:
		s += " forever"
	case x.UntilMs > 0:
		s += " until " + formatMs(x.UntilMs, loc)
	}
	if x.Reason != "" {
		s += ": " + safe(x.Reason)
	}
	return s
}

// recordView is the JSON form of a listed record.
type recordView struct {
	File        string  `json:"file"`
	Line        int     `json:"line"`
	Seq         uint64  `json:"seq"`
	Time        string  `json:"time"`
	WallclockMs int64   `json:"wallclock_ms"`
	ObserverNs  uint64  `json:"observer_ns"`
	Kind        string  `json:"kind"`
	DaemonPid   *uint32 `json:"daemon_pid,omitempty"`
	PrevChain   string  `json:"prev_chain,omitempty"`
	BootReason  string  `json:"boot_reason,omitempty"`
	AgentPid    *uint32 `json:"agent_pid,omitempty"`
	ChildPid    *uint32 `json:"child_pid,omitempty"`
	Mode        string  `json:"mode,omitempty"`
	Program     string  `json:"program,omitempty"`
	Source      string  `json:"source,omitempty"`
	TemplateLen *uint64 `json:"template_len,omitempty"`
	Outcome     string  `json:"outcome,omitempty"`
	ExitCode    *int    `json:"exit_code,omitempty"`
	Signal      *int    `json:"signal,omitempty"`
	DurationNs  *uint64 `json:"duration_ns,omitempty"`
	StdoutLen   *uint64 `json:"stdout_len,omitempty"`
	StderrLen   *uint64 `json:"stderr_len,omitempty"`
	Truncated   *bool   `json:"truncated,omitempty"`
	Reason      string  `json:"reason,omitempty"`
	UID         *uint32 `json:"uid,omitempty"`
	Action      string  `json:"action,omitempty"`
	Target      string  `json:"target,omitempty"`
	// Until is the end of a snooze: RFC 3339, or "forever".
	Until string `json:"until,omitempty"`
	Chain string `json:"chain"`
}

func view(pos audit.Position, r *audit.Record, loc *time.Location) recordView {
	v := recordView{File: pos.File, Line: pos.Line, Seq: r.Seq, WallclockMs: r.WallclockMs(), ObserverNs: r.ObserverNs(),
		Time: time.UnixMilli(r.WallclockMs()).In(loc).Format(time.RFC3339Nano), Kind: r.Kind.String(),
		Chain: chainText(r.Chain, r.Unchained)}
	switch r.Kind {
	case audit.KindBoot:
		b := r.Boot
		v.DaemonPid, v.BootReason = &b.DaemonPid, string(b.Reason)
		v.PrevChain = chainText(b.PrevChain, !b.HasPrevChain)
	case audit.KindSpawn:
		s := r.Spawn
		v.AgentPid, v.ChildPid, v.Mode, v.Program, v.Source, v.TemplateLen = &s.AgentPid, &s.ChildPid, s.Mode, s.Program, s.Source, &s.TemplateLen
	case audit.KindComplete:
		c := r.Complete
		v.AgentPid, v.ChildPid, v.Outcome = &c.AgentPid, &c.ChildPid, string(c.Outcome)
		if c.ExitCode >= 0 {
			v.ExitCode = &c.ExitCode
		}
		if c.Signal > 0 {
			v.Signal = &c.Signal
		}
		v.DurationNs, v.StdoutLen, v.StderrLen, v.Truncated = &c.DurationNs, &c.StdoutLen, &c.StderrLen, &c.Truncated
	case audit.KindRefused:
		x := r.Refused
		v.AgentPid, v.Reason = &x.AgentPid, x.Reason
	case audit.KindControl:
		x := r.Control
		v.UID, v.Action, v.Target, v.Reason = &x.UID, x.Action, x.Target, x.Reason
		switch {
		case x.Forever:
			v.Until = audit.ControlForever
		case x.UntilMs > 0:
			v.Until = time.UnixMilli(x.UntilMs).In(loc).Format(time.RFC3339Nano)
		}
	}
	return v
}

// outputText describes the captured output of a child. The record does not
// say whether capture was on; 0 and 0 means nothing was captured, either
// because --recovery-capture-stdio was off (the default: each line went to
// the daemon's log as a "recovery child output" line) or because the child
// printed nothing.
func outputText(c *audit.CompleteRecord) string {
	if c.StdoutLen == 0 && c.StderrLen == 0 && !c.Truncated {
		return "no output captured"
	}
	return "stdout " + bytesText(c.StdoutLen) + ", stderr " + bytesText(c.StderrLen)
}
