package service

import (
	"github.com/varta-go/varta/cmd/varta-watch/internal/recovery"
	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
)

// Auditor wraps next (the audit log) and counts every record per service
// (varta_service_recoveries_total{service,outcome}).
func (r *Registry) Auditor(next recovery.Auditor) recovery.Auditor {
	return countingAuditor{r: r, next: next}
}

type countingAuditor struct {
	r    *Registry
	next recovery.Auditor
}

func (a countingAuditor) Spawn(s recovery.SpawnRecord) {
	a.r.Record(s.Service, stats.OutcomeSpawned)
	a.next.Spawn(s)
}

func (a countingAuditor) Complete(c recovery.CompleteRecord) {
	switch {
	case c.Outcome == recovery.CompleteKilled:
		a.r.Record(c.Service, stats.OutcomeKilled)
	case c.Outcome == recovery.CompleteReaped && c.ExitCode == 0:
		a.r.Record(c.Service, stats.OutcomeReapedZero)
	case c.Outcome == recovery.CompleteReaped:
		a.r.Record(c.Service, stats.OutcomeReapedNonzero)
	}
	a.next.Complete(c)
}

func (a countingAuditor) Refused(f recovery.RefusedRecord) {
	a.r.Record(f.Service, f.Outcome)
	a.next.Refused(f)
}
