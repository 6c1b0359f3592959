// Package budget is the per-service restart budget (docs/services.md, "The restart budget"):
// exponential backoff between the recoveries of one service, and giving up
// after too many recoveries within a window, until retry_after passes or
// the service stays healthy for reset_after.
//
// Budgets are keyed by service name, not pid, so a service that restarts
// with a new pid at every recovery cannot escape them. The package is pure
// logic: the caller passes the stall clock and each service's Config, and
// turns Decisions into audit records, events-file lines, logs and metrics.
// Book.Snapshot is the read-only view the metrics exporter and the control
// socket use.
package budget
