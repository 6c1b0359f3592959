package control

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// TimeLayout is how wall-clock times are printed in tables.
const TimeLayout = "2006-01-02 15:04:05 -07:00"

// RenderAgents writes the agents table; times are shown in loc.
func RenderAgents(w io.Writer, agents []Agent, loc *time.Location) error {
	if len(agents) == 0 {
		_, err := io.WriteString(w, "no agents\n")
		return err
	}
	t := newTable(w, "rlllrrrrll")
	t.Header("pid", "service", "unit", "state", "last beat", "beats", "stalls", "recoveries", "origin", "snoozed")
	for _, a := range agents {
		t.Append(u32(a.Pid), safe(a.Service), safe(a.Unit), safe(a.State), Age(time.Duration(a.LastBeatAgeMs)*time.Millisecond),
			u64(a.Beats), u64(a.Stalls), u64(a.Recoveries), safe(a.Origin), snoozedText(a.Snoozed, loc))
	}
	return t.Render()
}

// RenderServices writes the services table; times are shown in loc.
func RenderServices(w io.Writer, services []Service, loc *time.Location) error {
	if len(services) == 0 {
		_, err := io.WriteString(w, "no services\n")
		return err
	}
	t := newTable(w, "lllllll")
	t.Header("service", "agents", "last recovery", "backoff until", "gave up until", "snoozed until", "reason")
	for _, s := range services {
		reason := ""
		if s.Snoozed != nil {
			reason = s.Snoozed.Reason
		}
		t.Append(safe(s.Name), agentsText(s.Agents), timeText(s.LastRecovery, loc), timeText(s.BackoffUntil, loc),
			timeText(s.GaveUpUntil, loc), snoozedText(s.Snoozed, loc), safe(reason))
	}
	return t.Render()
}

// RenderSnooze describes a snooze in one line.
func RenderSnooze(w io.Writer, verb string, s Snooze, loc *time.Location) error {
	until := "forever"
	if !s.Forever {
		until = "until " + s.Until.In(loc).Format(TimeLayout)
	}
	_, err := fmt.Fprintf(w, "%s %s %s: %s\n", verb, safe(s.Target), until, safe(s.Reason))
	return err
}

// WriteJSON writes v as indented JSON.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func agentsText(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, st := range States {
		if n := m[st]; n > 0 {
			parts = append(parts, strconv.Itoa(n)+" "+st)
		}
	}
	var other []string
	for st := range m {
		if !slices.Contains(States, st) {
			other = append(other, st)
		}
	}
	slices.Sort(other)
	for _, st := range other {
		parts = append(parts, strconv.Itoa(m[st])+" "+safe(st))
	}
	return strings.Join(parts, ", ")
}

func snoozedText(r *SnoozeRef, loc *time.Location) string {
	switch {
	case r == nil:
		return ""
	case r.Forever:
		return "forever"
	}
	return r.Until.In(loc).Format(TimeLayout)
}

func timeText(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	return t.In(loc).Format(TimeLayout)
}

// Age prints a last-beat age: "850ms", "12.3s", "4m05s", "3h12m", "2d04h".
func Age(d time.Duration) string {
	switch {
	case d < 0:
		return "0ms"
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

func newTable(w io.Writer, align string) *tablewriter.Table {
	aligns := make([]tw.Align, len(align))
	for i, a := range align {
		aligns[i] = tw.AlignLeft
		if a == 'r' {
			aligns[i] = tw.AlignRight
		}
	}
	return tablewriter.NewTable(w,
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
		tablewriter.WithRowAlignmentConfig(tw.CellAlignment{PerColumn: aligns}),
	)
}

// safe escapes control characters and invalid UTF-8 (as in a Go string
// literal), so that a name an agent chose cannot send escape sequences to
// the operator's terminal.
func safe(s string) string {
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			q := strconv.Quote(s)
			return q[1 : len(q)-1]
		}
	}
	return s
}

func u64(v uint64) string { return strconv.FormatUint(v, 10) }
func u32(v uint32) string { return strconv.FormatUint(uint64(v), 10) }
