// Package observer wires the daemon together: it binds the listeners,
// opens the events file, the audit log and the metrics endpoint, runs one
// receive goroutine per listener and one control loop that surfaces stalls
// at their deadlines, drives recovery, ticks the lifecycle duties
// (heartbeat file, watchdogs, sd_notify) and shuts everything down in order.
//
// It is the only package that knows all the others; none of them imports
// it. Datagrams travel one way: listener → ingest → tracker; stalls travel
// tracker → observer → recovery → audit.
package observer
