package observer

import (
	"github.com/varta-go/varta/cmd/varta-watch/internal/control"
	"github.com/varta-go/varta/cmd/varta-watch/internal/identity"
)

// ServiceNamer names agents for the control socket from the identity the
// tracker holds for each agent (policy rule, else unit, else comm); an
// agent whose identity is not (yet) known falls back to fallback
// (control.CommNamer when nil).
func (o *Observer) ServiceNamer(fallback control.ServiceNamer) control.ServiceNamer {
	if fallback == nil {
		fallback = &control.CommNamer{}
	}
	return trackerNamer{o: o, fallback: fallback}
}

type trackerNamer struct {
	o        *Observer
	fallback control.ServiceNamer
}

// Identify implements control.ServiceNamer.
func (n trackerNamer) Identify(pid uint32, generation uint64, local bool) control.Identity {
	if snap, ok := n.o.tr.Lookup(pid); ok && local && snap.Ident != nil &&
		(generation == 0 || snap.Generation == generation) && snap.Ident.Service != identity.Unknown {
		return control.Identity{Service: snap.Ident.Service, Unit: snap.Ident.Unit}
	}
	return n.fallback.Identify(pid, generation, local)
}
