package report

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/varta-go/varta/cmd/varta-audit/internal/summary"
	"github.com/varta-go/varta/pkg/audit"
)

// Summary writes the summarize tables.
func Summary(w io.Writer, s *summary.Summary, f Format, loc *time.Location) error {
	if f == JSON {
		return writeJSON(w, s)
	}
	span := "no records"
	if s.Totals.Records > 0 {
		span = formatMs(s.FirstMs, loc) + " to " + formatMs(s.LastMs, loc)
	}
	integrity := "intact"
	switch {
	case s.Integrity == audit.VerdictFailed:
		integrity = "FAILED (" + join(s.Failures) + "); run varta-audit verify for the details"
	case len(s.Warnings) > 0:
		integrity = "intact, with warnings (" + join(s.Warnings) + ")"
	}
	if _, err := fmt.Fprintf(w, "log:       %s (%s)\nspan:      %s\nintegrity: %s\n\nPer agent\n",
		safe(s.Path), plural(uint64(s.Files), "file", "files"), span, safe(integrity)); err != nil {
		return err
	}
	t := newTable(w, "rrrrrrrrrrrr")
	t.Header("agent pid", "stalls", "spawns", "exit 0", "exit != 0", "signalled", "killed", "reap failed", "refused", "p50", "p95", "max")
	for _, a := range s.Agents {
		t.Append(u32(a.Pid), u64(a.Stalls), u64(a.Spawns), u64(a.ReapedZero), u64(a.ReapedNonzero), u64(a.Signalled),
			u64(a.Killed), u64(a.ReapFailed), u64(a.Refused()), timedText(a, a.P50), timedText(a, a.P95), timedText(a, a.Max))
	}
	if err := t.Render(); err != nil {
		return err
	}

	if _, err := io.WriteString(w, "\nRefusals by agent and reason\n"); err != nil {
		return err
	}
	t = newTable(w, "rlr")
	t.Header("agent pid", "reason", "count")
	for _, a := range s.Agents {
		reasons := make([]string, 0, len(a.Refusals))
		for r := range a.Refusals {
			reasons = append(reasons, r)
		}
		slices.Sort(reasons)
		for _, r := range reasons {
			t.Append(u32(a.Pid), safe(r), u64(a.Refusals[r]))
		}
	}
	if err := t.Render(); err != nil {
		return err
	}

	if len(s.Services) > 0 {
		if _, err := io.WriteString(w, "\nServices (policy file)\n"); err != nil {
			return err
		}
		t = newTable(w, "lrrrr")
		t.Header("service", "spawns", "backoff", "gave up", "identity unsafe")
		for _, sv := range s.Services {
			t.Append(safe(sv.Name), u64(sv.Spawns), u64(sv.Backoff), u64(sv.GaveUp), u64(sv.IdentityUnsafe))
		}
		if err := t.Render(); err != nil {
			return err
		}
	}

	if len(s.Controls) > 0 {
		if _, err := io.WriteString(w, "\nOperator actions (control records)\n"); err != nil {
			return err
		}
		t = newTable(w, "lrrl")
		t.Header("action", "uid", "count", "last")
		for _, c := range s.Controls {
			t.Append(safe(c.Action), u32(c.UID), u64(c.Count), formatMs(c.LastMs, loc))
		}
		if err := t.Render(); err != nil {
			return err
		}
	}

	if _, err := io.WriteString(w, "\nDaemon boots\n"); err != nil {
		return err
	}
	t = newTable(w, "lr")
	t.Header("reason", "count")
	for _, r := range []audit.BootReason{audit.BootFresh, audit.BootResume, audit.BootCorruptTail, audit.BootSchemaDrift, audit.BootLegacyV1, audit.BootRotation} {
		t.Append(string(r), u64(s.Boots[r]))
	}
	if err := t.Render(); err != nil {
		return err
	}

	if _, err := io.WriteString(w, "\nTotals\n"); err != nil {
		return err
	}
	tot := s.Totals
	t = newTable(w, "lr")
	t.Header("", "count")
	rows := [][2]string{
		{"records", u64(tot.Records)},
		{"stalls acted on", u64(tot.Stalls)},
		{"spawns", u64(tot.Spawns)},
		{"completions", u64(tot.Completes)},
		{"refusals", u64(tot.Refusals)},
	}
	if tot.Controls > 0 {
		rows = append(rows, [2]string{"operator actions", u64(tot.Controls)})
	}
	rows = append(rows, [][2]string{
		{"agents", strconv.Itoa(tot.Agents)},
		{"daemon boots", u64(tot.Boots)},
		{"daemon restarts", u64(tot.Restarts)},
		{"daemon pids", strconv.Itoa(tot.DaemonPids)},
		{"records lost (seq gaps)", u64(tot.LostRecords)},
	}...)
	for _, r := range rows {
		t.Append(r[0], r[1])
	}
	return t.Render()
}

func u64(v uint64) string { return strconv.FormatUint(v, 10) }
func u32(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

// timedText is a recovery duration of agent a, or "-" when a has no
// completed recovery to measure ("0s" would read as "instant").
func timedText(a *summary.Agent, d time.Duration) string {
	if a.Timed() == 0 {
		return "-"
	}
	return durationText(d)
}
