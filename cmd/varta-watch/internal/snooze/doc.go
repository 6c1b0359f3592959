// Package snooze holds the operator's maintenance windows: snoozes of a
// service, of one pid (pid:N) or of everything (all), each with a reason
// and an end time — or no end, only when "forever" was given explicitly.
// While an agent matches an active snooze its stalls are still detected,
// written and counted, but recovery is refused with reason "snoozed".
//
// A Store keeps the snoozes in memory behind a read-write lock (Match is
// what the recovery decision calls) and, when given a path, in a small JSON
// state file under --state-dir, replaced atomically on every change with
// the secret-file rules (owner-only, never through a symlink; see
// pkg/secretfile). Open loads it and drops the snoozes that expired while
// the daemon was down. docs/control.md describes the behaviour and the file.
package snooze
