package observer

import (
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/events"
	"github.com/varta-go/varta/cmd/varta-watch/internal/identity"
	"github.com/varta-go/varta/cmd/varta-watch/internal/procfs"
	"github.com/varta-go/varta/cmd/varta-watch/internal/recovery"
	"github.com/varta-go/varta/cmd/varta-watch/internal/service"
	"github.com/varta-go/varta/cmd/varta-watch/internal/tracker"
	"github.com/varta-go/varta/pkg/vlp"
)

// identQueue bounds the new streams waiting for their identity; beyond it
// a stream keeps no identity (service "-", the command-line threshold) and
// the drop is counted as an unreadable cgroup read.
const identQueue = 4096

// newStream is a kernel-attested stream whose identity is to be read.
type newStream struct {
	pid, uid, epoch uint32
}

// startServices builds the service registry (the policy was read by the
// CLI layer) before the tracker, which needs its thresholds.
func (o *Observer) startServices() error {
	reg, err := service.New(service.Options{
		PolicyPath:    o.opts.PolicyFile,
		Policy:        o.opts.Policy,
		Threshold:     o.opts.Threshold,
		RetryInterval: o.opts.RecoveryRetry,
		MinRetry:      minRetrySpacing,
		// --recovery-exec or --recovery-exec-file (the CLI layer sets
		// Recovery with either).
		CommandLineRecovery: o.opts.RecoveryExecFile != "" || (o.opts.Recovery != nil && o.opts.Recovery.Program != ""),
		MaxServices:         o.opts.PromMaxServices,
		Logger:              o.log,
		OnGaveUp:            o.gaveUp,
	})
	if err != nil {
		return err
	}
	o.svc = reg
	o.idents = make(chan newStream, identQueue)
	o.retries = make(map[uint32]retry)
	return nil
}

// extraThresholds is the registry's thresholds beyond the command line's,
// for the tracker.
func extraThresholds(reg *service.Registry) []int64 {
	ths := reg.Thresholds()
	out := make([]int64, 0, len(ths)-1)
	for _, d := range ths[1:] {
		out = append(out, int64(d))
	}
	return out
}

// thresholdIndex is the tracker's index of info's threshold.
func (o *Observer) thresholdIndex(info *identity.Info) int {
	d := o.svc.Threshold(info)
	for i, t := range o.svc.Thresholds() {
		if t == d {
			return i
		}
	}
	return 0
}

// onNewStream queues a new kernel-attested stream for identity
// resolution. It runs under the tracker lock: it never blocks.
func (o *Observer) onNewStream(pid, uid, epoch uint32) {
	select {
	case o.idents <- newStream{pid: pid, uid: uid, epoch: epoch}:
	default:
		o.svc.IDC.Unreadable[identity.FieldCgroup].Add(1)
	}
}

// resolveIdentities reads the identities of new streams off the receive
// path and publishes them in the tracker with their threshold.
func (o *Observer) resolveIdentities() {
	defer close(o.identDone)
	for ns := range o.idents {
		info := o.svc.Identify(ns.pid, ns.uid)
		var gen uint64
		if g, err := procfs.Default.StartTime(ns.pid); err == nil {
			gen = g
		}
		o.tr.SetIdent(ns.pid, ns.epoch, gen, info, o.thresholdIndex(info))
	}
}

// gaveUp makes a give-up loud in the events file (the registry has logged
// it; the gauge follows from the budget).
func (o *Observer) gaveUp(g service.GaveUp) {
	if o.exp != nil {
		o.exp.Emit(events.Event{Kind: events.KindGaveUp, Ns: uint64(g.Now), Pid: g.Pid, Text: g.Service, Ident: g.Ident})
	}
}

// reloadPolicy is SIGHUP's policy part: on success every agent is
// classified again and the tracker's thresholds follow.
func (o *Observer) reloadPolicy() error {
	if o.opts.PolicyFile == "" {
		return nil
	}
	if err := o.svc.Reload(); err != nil {
		return err
	}
	return o.tr.Retarget(extraThresholds(o.svc), func(info *identity.Info) (*identity.Info, int) {
		ni := o.svc.Classify(info)
		return ni, o.thresholdIndex(ni)
	})
}

// retry is a silent agent whose recovery is tried again at at.
type retry struct {
	gen   uint64
	ident *identity.Info
	at    int64
}

// scheduleRetry records when the recovery of a stalled agent is tried
// again, if its service's budget or --recovery-retry-ms says so.
func (o *Observer) scheduleRetry(s tracker.Stall, now int64) {
	if o.rec == nil || !s.Origin.RecoveryEligible() {
		return
	}
	at, ok := o.svc.RetryAt(s.Ident, now)
	if !ok {
		delete(o.retries, s.Pid)
		return
	}
	o.retries[s.Pid] = retry{gen: s.Generation, ident: s.Ident, at: at}
}

// nextRetry returns the earliest retry time.
func (o *Observer) nextRetry() (int64, bool) {
	var best int64
	ok := false
	for _, r := range o.retries {
		if !ok || r.at < best {
			best, ok = r.at, true
		}
	}
	return best, ok
}

// minRetrySpacing keeps retries of one agent at least this far apart
// (the debounce of the same process is checked when a retry is due).
const minRetrySpacing = 10 * time.Millisecond

// retryBusy is how long a retry waits while a recovery child for the same
// process still runs.
const retryBusy = int64(100 * time.Millisecond)

// runRetries submits the recovery of every agent whose retry is due and
// that is still the same silent process.
func (o *Observer) runRetries(now int64) {
	if len(o.retries) == 0 {
		return
	}
	submitted := false
	for pid, r := range o.retries {
		if r.at > now {
			continue
		}
		snap, ok := o.tr.Lookup(pid)
		if !ok || !snap.Stalled || snap.Generation != r.gen || (snap.Origin == vlp.OriginKernelAttested && (!procfs.Alive(pid) || procfs.Default.Zombie(pid))) {
			delete(o.retries, pid)
			continue
		}
		if o.rec.InFlight(pid, r.gen) {
			r.at = now + retryBusy
			o.retries[pid] = r
			continue
		}
		if until := o.rec.DebouncedUntil(pid, r.gen, uint64(now)); until != 0 {
			r.at = int64(until) // a decision now would only be "debounced"
			o.retries[pid] = r
			continue
		}
		ident := snap.Ident
		o.rec.Submit(recovery.Stall{
			Pid: pid, Generation: snap.Generation, Origin: snap.Origin,
			CrossNamespace: snap.CrossNamespace, ObserverNs: uint64(now),
			Ident: ident, Service: serviceName(ident),
		})
		submitted = true
		r.at = now // rescheduled below, after the decision
		o.retries[pid] = r
	}
	if !submitted {
		return
	}
	o.rec.Tick()
	for pid, r := range o.retries {
		if r.at != now {
			continue
		}
		at, ok := o.svc.RetryAt(r.ident, now)
		if !ok {
			delete(o.retries, pid)
			continue
		}
		r.at = at
		o.retries[pid] = r
	}
}

func serviceName(info *identity.Info) string {
	if info == nil {
		return identity.Unknown
	}
	return info.Service
}

// serviceMetrics adapts the registry and the tracker to the metrics.
type serviceMetrics struct{ o *Observer }

func (m serviceMetrics) Views() []service.View {
	return m.o.svc.Views(m.o.clk.Now(), func(fn func(*identity.Info, int)) {
		m.o.tr.EachAgent(func(a tracker.AgentView) {
			st := stateIndex(a.Status)
			if a.Status == vlp.StatusStall && m.o.snoozed(a.Ident, a.Pid) {
				st = service.StateSnoozed
			}
			fn(a.Ident, st)
		})
	})
}

func (m serviceMetrics) Reloads() (uint64, uint64) {
	return m.o.svc.C.ReloadOK.Load(), m.o.svc.C.ReloadFailed.Load()
}

func (m serviceMetrics) Overflow() uint64 { return m.o.svc.C.Overflow.Load() }

func (m serviceMetrics) IdentityUnreadable() [identity.NumFields]uint64 {
	var out [identity.NumFields]uint64
	for f := range identity.NumFields {
		out[f] = m.o.svc.IDC.Unreadable[f].Load()
	}
	return out
}

// snoozed reports whether an operator's snooze matches the agent (its
// service, its pid, or all).
func (o *Observer) snoozed(info *identity.Info, pid uint32) bool {
	if o.ctl == nil {
		return false
	}
	_, ok := o.ctl.snoozed(serviceName(info), pid)
	return ok
}

// stateIndex maps a status to service.AgentStates.
func stateIndex(s vlp.Status) int {
	switch s {
	case vlp.StatusOk:
		return 0
	case vlp.StatusDegraded:
		return 1
	case vlp.StatusCritical:
		return 2
	case vlp.StatusStall:
		return 3
	}
	return -1
}

// Services returns the service registry (service names, budgets): the
// read-only view for the control socket.
func (o *Observer) Services() *service.Registry { return o.svc }
