// Package summary aggregates audit records into the figures varta-audit
// summarize prints: per agent pid, daemon boots, totals. It owns the
// arithmetic (counts, percentiles) and must not render or read files.
package summary
