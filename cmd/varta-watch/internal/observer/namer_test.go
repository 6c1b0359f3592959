package observer

import (
	"testing"

	"github.com/varta-go/varta/cmd/varta-watch/internal/control"
	"github.com/varta-go/varta/cmd/varta-watch/internal/identity"
	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/cmd/varta-watch/internal/tracker"
	"github.com/varta-go/varta/pkg/vlp"
)

type fixedNamer string

func (f fixedNamer) Identify(uint32, uint64, bool) control.Identity {
	return control.Identity{Service: string(f), Unit: "-"}
}

func TestServiceNamerUsesTheTrackedIdentity(t *testing.T) {
	tr, err := tracker.New(tracker.Options{Capacity: 4, Threshold: 1e9}, stats.New())
	if err != nil {
		t.Fatal(err)
	}
	o := &Observer{tr: tr}
	n := o.ServiceNamer(fixedNamer("fallback"))
	r := tr.Observe(&vlp.Frame{Pid: 10, Nonce: 1}, vlp.OriginNetworkUnverified, 0)
	if got := n.Identify(10, 0, true); got.Service != "fallback" {
		t.Fatalf("no identity yet: %+v", got)
	}
	tr.SetIdent(10, r.Epoch, 0, &identity.Info{Service: "web", Unit: "nginx.service"}, 0)
	if got := n.Identify(10, 0, true); got != (control.Identity{Service: "web", Unit: "nginx.service"}) {
		t.Fatalf("identity: %+v", got)
	}
	if got := n.Identify(10, 0, false); got.Service != "fallback" {
		t.Fatalf("a UDP agent took the identity: %+v", got)
	}
	if got := n.Identify(11, 0, true); got.Service != "fallback" {
		t.Fatalf("untracked pid: %+v", got)
	}
}
