// Package stats owns the observer's internal counters, gauges and
// fixed-bucket histograms: plain atomics that the hot path bumps without
// locks or allocation. It has no Prometheus dependency; the metrics package
// reads these values at scrape time. stats must never call into any other
// observer package.
package stats
