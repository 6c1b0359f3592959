// Package report renders varta-audit's results — verification reports,
// heads, summaries, record listings and rotations — as text (tablewriter
// tables for humans) or JSON (for scripts). It owns presentation only: it
// must not read audit files, decide exit codes or look at the terminal.
// Values that come from an audit file are untrusted and are escaped before
// they reach a terminal.
package report
