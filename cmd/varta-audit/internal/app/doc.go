// Package app defines the varta-audit command line: the cli.App with its
// subcommands and flags, and thin actions that turn flags into pkg/audit
// options and hand results to internal/report. It owns the mapping of
// outcomes to exit codes; it must not implement verification or rendering.
package app
