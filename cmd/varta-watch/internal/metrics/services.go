package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/varta-go/varta/cmd/varta-watch/internal/identity"
	"github.com/varta-go/varta/cmd/varta-watch/internal/service"
)

// ServiceSource is the service layer's side of the per-service metrics
// (docs/services.md, "What an operator sees"). Views is bounded by --prom-max-services (plus
// the overflow service "other").
type ServiceSource interface {
	Views() []service.View
	// Reloads returns the policy reloads that succeeded and failed.
	Reloads() (ok, failed uint64)
	// Overflow counts records attributed to "other".
	Overflow() uint64
	// IdentityUnreadable counts /proc reads that failed, per field.
	IdentityUnreadable() [identity.NumFields]uint64
}

// serviceCollector exports the per-service families.
type serviceCollector struct {
	src                                ServiceSource
	agents, stalls, recoveries, gaveUp *prometheus.Desc
	reloads, overflow, unreadable      *prometheus.Desc
}

func newServiceCollector(src ServiceSource) *serviceCollector {
	return &serviceCollector{
		src: src,
		agents: prometheus.NewDesc("varta_service_agents",
			"Tracked agents per service and state.", []string{"service", "state"}, nil),
		stalls: prometheus.NewDesc("varta_service_stalls_total",
			"Stalls surfaced per service.", []string{"service"}, nil),
		recoveries: prometheus.NewDesc("varta_service_recoveries_total",
			"Recovery decisions and child results per service, by outcome.", []string{"service", "outcome"}, nil),
		gaveUp: prometheus.NewDesc("varta_service_gave_up",
			"1 while the service has given up (its restart budget is exhausted), else 0.", []string{"service"}, nil),
		reloads: prometheus.NewDesc("varta_policy_reloads_total",
			"Policy file reloads (SIGHUP), by result.", []string{"result"}, nil),
		overflow: prometheus.NewDesc("varta_service_overflow_total",
			"Stalls and recovery records counted under service=\"other\" because --prom-max-services names were taken.", nil, nil),
		unreadable: prometheus.NewDesc("varta_identity_unreadable_total",
			"Identity reads from /proc that failed (the field is \"-\"), by field.", []string{"field"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (s *serviceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{s.agents, s.stalls, s.recoveries, s.gaveUp, s.reloads, s.overflow, s.unreadable} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (s *serviceCollector) Collect(ch chan<- prometheus.Metric) {
	for _, v := range s.src.Views() {
		for i, st := range service.AgentStates {
			ch <- prometheus.MustNewConstMetric(s.agents, prometheus.GaugeValue, float64(v.Agents[i]), v.Service, st)
		}
		ch <- prometheus.MustNewConstMetric(s.stalls, prometheus.CounterValue, float64(v.Stalls), v.Service)
		for _, o := range service.ExportedOutcomes {
			ch <- prometheus.MustNewConstMetric(s.recoveries, prometheus.CounterValue, float64(v.Outcomes[o]), v.Service, o.Label())
		}
		g := 0.0
		if v.GaveUp {
			g = 1
		}
		ch <- prometheus.MustNewConstMetric(s.gaveUp, prometheus.GaugeValue, g, v.Service)
	}
	ok, failed := s.src.Reloads()
	ch <- prometheus.MustNewConstMetric(s.reloads, prometheus.CounterValue, float64(ok), "ok")
	ch <- prometheus.MustNewConstMetric(s.reloads, prometheus.CounterValue, float64(failed), "failed")
	ch <- prometheus.MustNewConstMetric(s.overflow, prometheus.CounterValue, float64(s.src.Overflow()))
	un := s.src.IdentityUnreadable()
	for f := range identity.NumFields {
		ch <- prometheus.MustNewConstMetric(s.unreadable, prometheus.CounterValue, float64(un[f]), f.String())
	}
}
