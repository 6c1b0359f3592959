package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// Format is an output format.
type Format int

// Formats.
const (
	Text Format = iota
	JSON
)

// ParseFormat maps "text" and "json" to their Format.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "text", "":
		return Text, nil
	case "json":
		return JSON, nil
	}
	return Text, fmt.Errorf("unknown format %q: want text or json", s)
}

// TimeLayout is how wall-clock times are printed in text output.
const TimeLayout = "2006-01-02 15:04:05.000 -07:00"

// formatMs prints ms since the epoch in loc.
func formatMs(ms int64, loc *time.Location) string {
	return time.UnixMilli(ms).In(loc).Format(TimeLayout)
}

// safe escapes what must not reach a terminal raw: control characters
// (escape sequences) and invalid UTF-8, as in a Go string literal.
func safe(s string) string {
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			q := strconv.Quote(s)
			return q[1 : len(q)-1]
		}
	}
	return s
}

// bytesText prints a byte count.
func bytesText(n uint64) string {
	switch {
	case n < 1<<10:
		return strconv.FormatUint(n, 10) + " B"
	case n < 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " KiB"
	case n < 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
	}
	return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + " GiB"
}

// durationText rounds a duration for display.
func durationText(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.String()
}

// newTable returns a table with plain headers and the given alignment per
// column ('l' or 'r').
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

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func plural(n uint64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.FormatUint(n, 10) + " " + many
}

func join(parts []string) string { return strings.Join(parts, "; ") }
