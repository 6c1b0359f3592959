// Command varta-watch is the varta observer daemon: it receives VLP
// heartbeats over a Unix datagram socket (and optionally plain or secure
// UDP), surfaces a stall when an agent goes silent past --threshold-ms,
// runs a recovery program behind strict safety gates, exports Prometheus
// metrics and writes a hash-chained audit log. main only runs the App
// that internal/app builds; see man/varta-watch.8 and docs/observer.md.
package main
