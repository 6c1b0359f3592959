// Package policy reads the policy file (--policy-file, docs/services.md):
// YAML rules that name agents as services by their identity (unit, comm,
// exe, uid and container globs; first match wins) and give each service a
// silence threshold, a recovery argument list with placeholders or none,
// and a restart budget.
//
// Decoding is strict: unknown and duplicate keys, duplicate rule names,
// wrong types, bad durations, bad globs and unknown placeholders are
// *Error values naming the file, the line and the key. The file decides
// what the daemon executes, so Load applies the secret-file rules before
// reading it. A Policy is immutable: a reload parses a new one and the
// caller swaps it in, keeping the old one when parsing fails.
//
// Expand substitutes placeholders at recovery time and refuses values that
// are unknown or could be read as options or paths (identity_unsafe).
package policy
