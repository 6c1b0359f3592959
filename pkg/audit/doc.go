// Package audit owns the varta recovery audit log, schema v2 (docs/audit.md): the
// record types and their exact line encoding, the SHA-256 hash chain, the
// daemon's Writer (file rules, advisory lock, tail recovery and boot records,
// bounded non-blocking queue, fdatasync cadence, rotation), a streaming Reader
// over a log and its rotated generations, the Verifier that produces a
// structured Report, Head and the stand-alone Rotate used by varta-audit.
//
// It must not block its callers on disk I/O (the Writer's enqueue methods
// never wait), must not log on its own (problems are counted in Stats and
// reported through the optional Logger), must not read flags, os.Args or the
// environment, and depends only on the standard library and golang.org/x/sys.
package audit
