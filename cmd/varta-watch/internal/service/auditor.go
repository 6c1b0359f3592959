package service

import (
	"github.com/varta-go/varta/cmd/varta-watch/internal/recovery"
	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/pkg/audit"
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

func (a countingAuditor) Spawn(s audit.SpawnRecord, n recovery.Note) {
	a.r.Record(n.Service, stats.OutcomeSpawned)
	a.next.Spawn(s, n)
}

func (a countingAuditor) Complete(c audit.CompleteRecord, n recovery.Note) {
	switch {
	case c.Outcome == audit.OutcomeKilled:
		a.r.Record(n.Service, stats.OutcomeKilled)
	case c.Outcome == audit.OutcomeReaped && c.ExitCode == 0:
		a.r.Record(n.Service, stats.OutcomeReapedZero)
	case c.Outcome == audit.OutcomeReaped:
		a.r.Record(n.Service, stats.OutcomeReapedNonzero)
	}
	a.next.Complete(c, n)
}

func (a countingAuditor) Refused(f audit.RefusedRecord, n recovery.Note) {
	a.r.Record(n.Service, stats.Refusal(n.Reason))
	a.next.Refused(f, n)
}
