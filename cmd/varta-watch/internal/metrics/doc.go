// Package metrics owns the observer's Prometheus view: the collectors that
// turn the stats counters and the tracker's per-agent state into the
// metric families of docs/metrics.md at scrape time, the dedicated registry
// they live on, and the authenticated, rate-limited HTTP endpoint that
// serves GET /metrics.
//
// Every value is read at scrape time: from the lock-free stats.Counters and
// from Source.EachAgent, which the tracker implements without taking locks
// that ingest needs. The package must never call back into the hot path,
// never hold state that ingest waits for, never register on the global
// Prometheus registry, and never read os.Args or the environment; the
// caller passes everything in through Options and ServerOptions.
package metrics
