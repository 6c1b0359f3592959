// Package state keeps what varta-watch must not forget across a restart:
// the tracked agents (so that a hung agent is still reported stalled after
// an upgrade or a configuration change) and the secure-UDP replay
// high-water marks (so that frames captured before a restart are still
// refused after it). Both live as files in the --state-dir directory.
//
// Files are written atomically (a new file created with mode 0600 next to
// the target, written, fsynced, renamed over the target, then the
// directory fsynced), so a reader only ever sees a complete old or a
// complete new file. They are read under the secret-file rules of
// pkg/secretfile (regular file, not a symlink, owned by the daemon's uid,
// no group or other access): a state file decides which processes may be
// recovered and which frames are replays, so a file someone else could
// have written is refused.
//
// The format is line-oriented text (docs/reliability.md describes it):
// a header naming the kind and version, the save time, records, and an
// end line with the record count and a CRC-32C of everything before it,
// so a truncated or altered file is refused as a whole. The parsers are
// strict and bounded (line length, record count, numeric ranges,
// duplicates) and are fuzzed; an error names the file, the line and the
// rule broken. The daemon then starts fresh and counts the refusal.
package state
