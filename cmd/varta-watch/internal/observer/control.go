package observer

import (
	"context"
	"fmt"

	"sync"
	"sync/atomic"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/budget"
	"github.com/varta-go/varta/cmd/varta-watch/internal/control"
	"github.com/varta-go/varta/cmd/varta-watch/internal/metrics"
	"github.com/varta-go/varta/cmd/varta-watch/internal/recovery"
	"github.com/varta-go/varta/cmd/varta-watch/internal/snooze"
	"github.com/varta-go/varta/cmd/varta-watch/internal/state"
	"github.com/varta-go/varta/cmd/varta-watch/internal/tracker"
	"github.com/varta-go/varta/pkg/audit"
	"github.com/varta-go/varta/pkg/vlp"
)

// snapshotTTL bounds how often the agents snapshot is rebuilt, however
// many control clients ask: one walk of the table per interval.
const snapshotTTL = 200 * time.Millisecond

// controlState is the daemon side of the control socket: the snooze
// store, the service namer, the per-agent recovery counts and the cached
// agents snapshot.
type controlState struct {
	o       *Observer
	snoozes *snooze.Store
	namer   control.ServiceNamer
	srv     *control.Server

	mu           sync.Mutex
	recoveries   map[uint32]uint64    // spawns per agent pid (pruned to tracked pids)
	lastRecovery map[string]time.Time // last spawn per service (bounded)
	snapAt       time.Time
	snap         []control.Agent

	// reload asks the control loop to do what SIGHUP does (the sender
	// kicks the loop's alarm after a send).
	reload chan chan error

	// held are the stalls refused because of a snooze (by pid), owned by
	// the control loop (the runner plans on it). When snoozes end, those
	// still silent and no longer snoozed are submitted again.
	held map[uint32]recovery.Stall
	// ended is set when a resume ended a snooze (from a request
	// goroutine); the loop then re-checks held at its next tick.
	ended atomic.Bool
}

// maxHeld bounds held; a stall beyond it is not re-submitted when its
// snooze ends (it is still surfaced and counted).
const maxHeld = 1 << 16

// maxServiceTimes bounds lastRecovery.
const maxServiceTimes = 4096

// startControl opens the snooze store and binds the control socket.
func (o *Observer) startControl() error {
	co := o.opts.Control
	if co == nil {
		return nil
	}
	cs := &controlState{o: o, namer: o.ServiceNamer(&control.CommNamer{}), recoveries: map[uint32]uint64{},
		lastRecovery: map[string]time.Time{}, reload: make(chan chan error, 4), held: map[uint32]recovery.Stall{}}
	path := ""
	if co.StateDir != "" {
		d, err := state.OpenDir(co.StateDir)
		if err != nil {
			return err
		}
		path = d.File(snooze.FileName)
	}
	st, info, err := snooze.Open(path, nil)
	if err != nil {
		return err
	}
	cs.snoozes = st
	switch {
	case path == "":
		o.log.Warn("no --state-dir: snoozes are kept in memory and lost at exit")
	case info.Loaded > 0 || info.Expired > 0:
		o.log.Info("snoozes loaded", "path", path, "in_force", info.Loaded, "expired_while_down", info.Expired)
	}
	srv, err := control.Listen(control.Options{
		Path:           co.Path,
		Mode:           co.Mode,
		AllowUIDs:      co.AllowUIDs,
		Agents:         cs.agents,
		ServiceDetails: cs.serviceDetails,
		Snoozes:        st,
		Reload:         cs.requestReload,
		Audit:          o.auditControl,
		OnSnoozeChange: func() { cs.ended.Store(true) },
		Logger:         o.log,
	})
	if err != nil {
		return err
	}
	cs.srv = srv
	o.ctl = cs
	o.closeFns = append(o.closeFns, func() {
		if err := srv.Close(); err != nil {
			o.log.Warn("closing the control socket failed", "err", err)
		}
	})
	o.log.Info("control socket listening", "path", co.Path)
	return nil
}

// auditControl writes a control record (an operator action).
func (o *Observer) auditControl(r audit.ControlRecord) {
	if o.audit == nil {
		return
	}
	r.ObserverNs = uint64(o.clk.Now())
	if !o.audit.Control(r) {
		o.log.Warn("audit record of an operator action not written (queue full or invalid)", "action", r.Action, "target", r.Target)
	}
}

// requestReload runs a reload on the control loop and waits for its
// result (or the request's deadline).
func (cs *controlState) requestReload(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case cs.reload <- reply:
		cs.o.alarm.Kick()
	case <-ctx.Done():
		return fmt.Errorf("reload: the daemon did not take the request in time: %w", ctx.Err())
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return fmt.Errorf("reload: no result in time: %w", ctx.Err())
	}
}

// reloadChan is the loop's side of requestReload (nil without a control
// socket: the select case never fires).
func (o *Observer) reloadChan() chan chan error {
	if o.ctl == nil {
		return nil
	}
	return o.ctl.reload
}

// expireSnoozes drops ended snoozes (once per tick; it writes the state
// file only when one ended).
func (o *Observer) expireSnoozes() {
	if o.ctl == nil {
		return
	}
	gone, err := o.ctl.snoozes.Expire()
	if err != nil {
		o.log.Warn("dropping ended snoozes failed", "err", err)
		return
	}
	for _, e := range gone {
		o.log.Info("snooze ended", "target", e.Target, "reason", e.Reason)
	}
	if len(gone) > 0 || o.ctl.ended.Swap(false) {
		o.releaseHeld()
	}
}

// releaseHeld submits again the stalls refused because of a snooze whose
// agent is still the same, still silent process and is no longer snoozed:
// a hung service is recovered when its maintenance window ends, not only
// at its next stall.
func (o *Observer) releaseHeld() {
	cs := o.ctl
	if o.rec == nil || len(cs.held) == 0 {
		return
	}
	n := 0
	for pid, st := range cs.held {
		snap, ok := o.tr.Lookup(pid)
		if !ok || snap.Generation != st.Generation || !snap.Stalled {
			delete(cs.held, pid) // gone, replaced or beating again
			continue
		}
		svc := st.Service
		if svc == "" {
			svc = cs.identify(pid, st.Generation, st.Origin).Service
		}
		if _, still := cs.snoozed(svc, pid); still {
			continue
		}
		delete(cs.held, pid)
		st.ObserverNs = uint64(o.clk.Now())
		o.rec.Submit(st)
		n++
	}
	if n > 0 {
		o.log.Info("snooze over: recovering agents that stalled while snoozed", "agents", n)
		o.rec.Tick()
	}
}

// identify names an agent's service.
func (cs *controlState) identify(pid uint32, gen uint64, origin vlp.Origin) control.Identity {
	local := origin == vlp.OriginKernelAttested || origin == vlp.OriginSocketModeOnly
	return cs.namer.Identify(pid, gen, local)
}

// Snoozed reports the snooze matching an agent, if any (the recovery gate
// and the metrics read it).
func (cs *controlState) snoozed(service string, pid uint32) (snooze.Entry, bool) {
	return cs.snoozes.Match(service, pid)
}

// agents builds (at most every snapshotTTL) the agents snapshot: a
// lock-free walk of the table for the pids, then one short Lookup per pid,
// so ingest never waits for more than one slot copy.
func (cs *controlState) agents() []control.Agent {
	now := time.Now()
	cs.mu.Lock()
	if !cs.snapAt.IsZero() && now.Sub(cs.snapAt) < snapshotTTL {
		out := append([]control.Agent(nil), cs.snap...)
		cs.mu.Unlock()
		return out
	}
	cs.mu.Unlock()

	o := cs.o
	var pids []uint32
	o.tr.EachAgent(func(v tracker.AgentView) { pids = append(pids, v.Pid) })
	clockNow := o.clk.Now()
	out := make([]control.Agent, 0, len(pids))
	live := make(map[uint32]bool, len(pids))
	for _, pid := range pids {
		s, ok := o.tr.Lookup(pid)
		if !ok {
			continue
		}
		live[pid] = true
		id := cs.identify(pid, s.Generation, s.Origin)
		a := control.Agent{
			Pid: pid, Service: id.Service, Unit: id.Unit, State: stateOf(s),
			LastBeatAgeMs: max(0, time.Duration(clockNow-s.LastSeen).Milliseconds()),
			Beats:         s.Beats, Stalls: s.Stalls, Origin: originName(s.Origin),
		}
		out = append(out, a)
	}
	cs.markGaveUp(out, clockNow)
	cs.mu.Lock()
	for i := range out {
		out[i].Recoveries = cs.recoveries[out[i].Pid]
	}
	if len(cs.recoveries) > 2*len(live)+64 {
		for pid := range cs.recoveries {
			if !live[pid] {
				delete(cs.recoveries, pid)
			}
		}
	}
	cs.snap, cs.snapAt = out, now
	cs.mu.Unlock()
	return append([]control.Agent(nil), out...)
}

// markGaveUp shows a stalled agent of a service whose restart budget gave
// up as gave_up (its stalls are refused until retry_after).
func (cs *controlState) markGaveUp(agents []control.Agent, now int64) {
	o := cs.o
	if o.svc == nil {
		return
	}
	gaveUp := map[string]bool{}
	for _, b := range o.svc.Book().Snapshot(now, o.svc.Policy().Budget) {
		if b.Phase == budget.PhaseGaveUp {
			gaveUp[b.Service] = true
		}
	}
	if len(gaveUp) == 0 {
		return
	}
	for i := range agents {
		if agents[i].State == control.StateStalled && gaveUp[agents[i].Service] {
			agents[i].State = control.StateGaveUp
		}
	}
}

func stateOf(s tracker.Snapshot) string {
	if s.Stalled {
		return control.StateStalled
	}
	switch s.Status {
	case vlp.StatusDegraded:
		return control.StateDegraded
	case vlp.StatusCritical:
		return control.StateCritical
	case vlp.StatusStall:
		return control.StateStalled
	}
	return control.StateOK
}

// originName is the origin column: kernel (Unix socket, credentials from
// the kernel), socket_mode_only, operator_attested (UDP allowed to
// trigger recovery), network_unverified.
func originName(o vlp.Origin) string {
	switch o {
	case vlp.OriginKernelAttested:
		return "kernel"
	case vlp.OriginSocketModeOnly:
		return "socket_mode_only"
	case vlp.OriginOperatorAttestedTransport:
		return "operator_attested"
	case vlp.OriginNetworkUnverified:
		return "network_unverified"
	}
	return "unknown"
}

func (cs *controlState) serviceDetails(name string) (lastRecovery, backoffUntil, gaveUpUntil time.Time) {
	cs.mu.Lock()
	lastRecovery = cs.lastRecovery[name]
	cs.mu.Unlock()
	// The restart budget (docs/services.md), converted from the stall
	// clock to wall time.
	o := cs.o
	now := o.clk.Now()
	wall := func(ns int64) time.Time { return time.Now().Add(time.Duration(ns - now)) }
	pol := o.svc.Policy()
	for _, b := range o.svc.Book().Snapshot(now, pol.Budget) {
		if b.Service != name {
			continue
		}
		if b.BackoffUntil != 0 {
			backoffUntil = wall(b.BackoffUntil)
		}
		if b.GaveUpUntil != 0 {
			gaveUpUntil = wall(b.GaveUpUntil)
		}
	}
	return lastRecovery, backoffUntil, gaveUpUntil
}

// noteSpawn counts a recovery of pid (service svc).
func (cs *controlState) noteSpawn(pid uint32, svc string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.recoveries[pid]++
	if svc != "" {
		if _, ok := cs.lastRecovery[svc]; !ok && len(cs.lastRecovery) >= maxServiceTimes {
			clear(cs.lastRecovery)
		}
		cs.lastRecovery[svc] = time.Now()
	}
}

// snoozeGate is the recovery Planner in front of the service layer's: a
// stall of an agent that a snooze matches is refused with reason
// "snoozed:<service>" (counted as refused_snoozed) before any restart
// budget is consulted, so a snooze never uses up a budget.
type snoozeGate struct {
	cs   *controlState
	next recovery.Planner
}

func (g snoozeGate) Plan(s recovery.Stall, now uint64) recovery.Plan {
	svc := s.Service
	if svc == "" {
		svc = g.cs.identify(s.Pid, s.Generation, s.Origin).Service
	}
	if e, ok := g.cs.snoozed(svc, s.Pid); ok {
		if _, known := g.cs.held[s.Pid]; known || len(g.cs.held) < maxHeld {
			g.cs.held[s.Pid] = s
		}
		g.cs.o.log.Info("recovery refused: snoozed", "pid", s.Pid, "service", svc, "snooze", e.Target, "reason", e.Reason)
		return recovery.Plan{Refuse: audit.ReasonSnoozed, Service: svc}
	}
	if g.next != nil {
		return g.next.Plan(s, now)
	}
	return recovery.Plan{Service: svc}
}

// countingAuditor counts spawns per agent and service for the control
// socket, then passes every record on.
type countingAuditor struct {
	cs   *controlState
	next recovery.Auditor
}

func (a countingAuditor) Spawn(r audit.SpawnRecord, n recovery.Note) {
	a.cs.noteSpawn(r.AgentPid, n.Service)
	a.next.Spawn(r, n)
}
func (a countingAuditor) Complete(r audit.CompleteRecord, n recovery.Note) { a.next.Complete(r, n) }
func (a countingAuditor) Refused(r audit.RefusedRecord, n recovery.Note)   { a.next.Refused(r, n) }

// ControlRequests implements metrics.ControlSource.
func (cs *controlState) ControlRequests() []metrics.ControlRequest {
	reqs := cs.srv.Requests()
	out := make([]metrics.ControlRequest, len(reqs))
	for i, r := range reqs {
		out[i] = metrics.ControlRequest{Endpoint: r.Endpoint, Code: r.Code, Count: r.Count}
	}
	return out
}

// SnoozedServices implements metrics.ControlSource: the targets of the
// snoozes in force.
func (cs *controlState) SnoozedServices() []string {
	list := cs.snoozes.List()
	out := make([]string, len(list))
	for i, e := range list {
		out[i] = e.Target
	}
	return out
}
