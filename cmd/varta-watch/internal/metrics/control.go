package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// ControlRequest is one series of varta_control_requests_total.
type ControlRequest struct {
	Endpoint string
	Code     int
	Count    uint64
}

// ControlSource is what the control socket exports (docs/control.md):
// request counts by endpoint and status code, and the services a snooze
// in force matches (a service name, pid:N or all, as snoozed).
type ControlSource interface {
	ControlRequests() []ControlRequest
	SnoozedServices() []string
}

var (
	descControlRequests = prometheus.NewDesc("varta_control_requests_total",
		"Requests to the control socket by endpoint and HTTP status code (403: a uid that may not use it).",
		[]string{"endpoint", "code"}, nil)
	descServiceSnoozed = prometheus.NewDesc("varta_service_snoozed",
		"1 while an operator's snooze matches the service: its stalls are counted but not recovered. The label is the snooze target (a service, pid:N or all).",
		[]string{"service"}, nil)
)

type controlCollector struct{ src ControlSource }

func newControlCollector(src ControlSource) prometheus.Collector { return controlCollector{src} }

func (c controlCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descControlRequests
	ch <- descServiceSnoozed
}

func (c controlCollector) Collect(ch chan<- prometheus.Metric) {
	for _, r := range c.src.ControlRequests() {
		ch <- prometheus.MustNewConstMetric(descControlRequests, prometheus.CounterValue, float64(r.Count), r.Endpoint, strconv.Itoa(r.Code))
	}
	for _, s := range c.src.SnoozedServices() {
		ch <- prometheus.MustNewConstMetric(descServiceSnoozed, prometheus.GaugeValue, 1, s)
	}
}
