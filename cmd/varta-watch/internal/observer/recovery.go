package observer

import "github.com/varta-go/varta/cmd/varta-watch/internal/tracker"

// afterStalls hands surfaced stalls to recovery.
func (o *Observer) afterStalls(stalls []tracker.Stall) {}

// tickRecovery reaps and spawns recovery children.
func (o *Observer) tickRecovery() {}

// shutdownRecovery kills outstanding children and flushes the audit log.
func (o *Observer) shutdownRecovery() {}
