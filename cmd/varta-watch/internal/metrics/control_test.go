package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
)

type fakeControl struct {
	reqs    []ControlRequest
	snoozed []string
}

func (f fakeControl) ControlRequests() []ControlRequest { return f.reqs }
func (f fakeControl) SnoozedServices() []string         { return f.snoozed }

func TestControlFamilies(t *testing.T) {
	src := fakeControl{
		reqs:    []ControlRequest{{"agents", 200, 7}, {"agents", 403, 2}, {"snooze", 400, 1}},
		snoozed: []string{"all", "pid:42", "web"},
	}
	reg := NewRegistry(stats.New(), nil, Options{Control: src})
	want := `
# HELP varta_control_requests_total Requests to the control socket by endpoint and HTTP status code (403: a uid that may not use it).
# TYPE varta_control_requests_total counter
varta_control_requests_total{code="200",endpoint="agents"} 7
varta_control_requests_total{code="400",endpoint="snooze"} 1
varta_control_requests_total{code="403",endpoint="agents"} 2
# HELP varta_service_snoozed 1 while an operator's snooze matches the service: its stalls are counted but not recovered. The label is the snooze target (a service, pid:N or all).
# TYPE varta_service_snoozed gauge
varta_service_snoozed{service="all"} 1
varta_service_snoozed{service="pid:42"} 1
varta_service_snoozed{service="web"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "varta_control_requests_total", "varta_service_snoozed"); err != nil {
		t.Fatal(err)
	}
	// Without a control socket the families do not exist.
	n, err := testutil.GatherAndCount(NewRegistry(stats.New(), nil, Options{}), "varta_control_requests_total", "varta_service_snoozed")
	if err != nil || n != 0 {
		t.Fatalf("without control: %d series, %v", n, err)
	}
}
