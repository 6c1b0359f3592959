package observer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/cmd/varta-watch/internal/recovery"
	"github.com/varta-go/varta/cmd/varta-watch/internal/tracker"
	"github.com/varta-go/varta/pkg/audit"
	"github.com/varta-go/varta/pkg/secretfile"
	"github.com/varta-go/varta/pkg/vlp"
)

// startRecovery opens the audit log and builds the recovery runner.
func (o *Observer) startRecovery() error {
	if o.opts.Audit != nil {
		ao := *o.opts.Audit
		ao.ObserveFsync = o.c.AuditFsync.Observe
		if ao.Logger == nil {
			ao.Logger = o.log
		}
		w, err := audit.Open(ao)
		if err != nil {
			return err
		}
		o.audit = w
		o.closeFns = append(o.closeFns, func() {
			if err := w.Close(); err != nil {
				// Lost records are data loss: the daemon exits 1 naming
				// them (the next boot leaves their seqs as a gap).
				o.log.Error("closing the audit log failed", "err", err)
				o.shutdownErr = errors.Join(o.shutdownErr, err)
			}
			o.syncAuditStats()
		})
		b := w.Boot()
		o.log.Info("audit log opened", "path", ao.Path, "boot", string(b.Reason), "seq", b.Seq)
		if b.LostSeqs > 0 {
			o.log.Warn("audit records were lost at the previous shutdown; their seqs are left as a gap",
				"path", ao.Path, "lost", b.LostSeqs, "first", b.Seq-b.LostSeqs, "last", b.Seq-1)
		}
	}
	if o.opts.Recovery == nil && o.opts.RecoveryExecFile == "" && o.opts.PolicyFile == "" {
		return nil
	}
	ro := recovery.Options{}
	if o.opts.Recovery != nil {
		ro = *o.opts.Recovery
	}
	if o.opts.RecoveryExecFile != "" {
		b, err := secretfile.Read(o.opts.RecoveryExecFile)
		if err != nil {
			return fmt.Errorf("recovery command file: %w", err)
		}
		prog, args, err := recovery.ParseCommand(strings.TrimSpace(string(b)))
		if err != nil {
			return fmt.Errorf("recovery command file %q: %w", o.opts.RecoveryExecFile, err)
		}
		ro.Program, ro.Args, ro.Source = prog, args, o.opts.RecoveryExecFile
	}
	if ro.Logger == nil {
		ro.Logger = o.log
	}
	if o.opts.PolicyFile != "" {
		ro.Planner = o.svc
	}
	var sink recovery.Auditor = recovery.NopAuditor{}
	if o.audit != nil {
		sink = auditSink{o.audit}
	}
	sink = storyAuditor{next: o.svc.Auditor(sink), s: o.story}
	if o.ctl != nil {
		ro.Planner = snoozeGate{cs: o.ctl, next: ro.Planner}
		sink = countingAuditor{cs: o.ctl, next: sink}
	}
	r, err := recovery.New(ro, verifier{o}, sink, o.c, func() uint64 { return uint64(o.clk.Now()) })
	if err != nil {
		return fmt.Errorf("recovery: %w", err)
	}
	o.rec = r
	if ro.InheritEnv {
		o.log.Warn("--recovery-inherit-env: recovery children receive the daemon's whole environment")
	}
	program, source := r.Command()
	o.log.Info("recovery enabled", "program", program, "source", source)
	if err := checkProgram(ro.Program); err != nil {
		// Not fatal: the program may be installed later (the lookup happens
		// at every spawn, and a failed spawn is audited as spawn_failed).
		o.warn("recovery program is not runnable now; recoveries will fail with spawn_failed until it is", "err", err)
	}
	return nil
}

// checkProgram reports an absolute recovery program path that does not
// exist, is not a regular file or is not executable. A bare name is looked
// up in the child's PATH at each spawn and is not checked here.
func checkProgram(program string) error {
	if !filepath.IsAbs(program) {
		return nil
	}
	fi, err := os.Stat(program)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", program)
	}
	if err := unix.Access(program, unix.X_OK); err != nil {
		return fmt.Errorf("%s: not executable: %w", program, err)
	}
	return nil
}

// afterStalls hands surfaced stalls to recovery and decides them at once.
func (o *Observer) afterStalls(stalls []tracker.Stall) {
	if o.rec == nil {
		return
	}
	for _, s := range stalls {
		o.rec.Submit(recovery.Stall{
			Pid: s.Pid, Generation: s.Generation, Origin: s.Origin,
			CrossNamespace: s.CrossNamespace, ObserverNs: uint64(s.Surfaced),
			Ident: s.Ident, Service: serviceName(s.Ident),
		})
	}
	if len(stalls) > 0 {
		o.rec.Tick()
		now := o.clk.Now()
		for _, s := range stalls {
			o.scheduleRetry(s, now)
		}
	}
}

// tickRecovery reaps and spawns recovery children.
func (o *Observer) tickRecovery() {
	if o.rec != nil {
		o.rec.Tick()
	}
	o.syncAuditStats()
}

func (o *Observer) syncAuditStats() {
	if o.audit == nil {
		return
	}
	st := o.audit.Stats()
	o.c.RecoveryAuditDropped.Store(st.Dropped)
	o.c.AuditFsyncBudgetExceeded.Store(st.FsyncBudgetExceeded)
}

// shutdownRecovery kills outstanding children and waits for them; the
// audit log is flushed and closed afterwards by closeAll.
func (o *Observer) shutdownRecovery() {
	if o.rec != nil {
		o.rec.Shutdown(o.opts.ShutdownGrace)
	}
}

// verifier re-checks a stall right before recovery decides it.
type verifier struct{ o *Observer }

func (v verifier) Verify(s recovery.Stall) recovery.Verdict {
	snap, ok := v.o.tr.Lookup(s.Pid)
	if !ok {
		return recovery.VerdictUnverifiable
	}
	if snap.Generation != s.Generation {
		return recovery.VerdictRecycled
	}
	if !snap.Stalled {
		return recovery.VerdictResumed
	}
	if snap.Origin == vlp.OriginKernelAttested && v.o.resolver != nil {
		id, err := v.o.resolver.Identity(s.Pid)
		switch {
		case err != nil: // gone, or unreadable
			return recovery.VerdictUnverifiable
		case id.Generation != s.Generation:
			return recovery.VerdictRecycled
		}
	}
	return recovery.VerdictFresh
}

// auditSink writes recovery decisions to the audit log without blocking.
type auditSink struct{ w *audit.Writer }

func (a auditSink) Spawn(r audit.SpawnRecord, _ recovery.Note)       { a.w.Spawn(r) }
func (a auditSink) Complete(r audit.CompleteRecord, _ recovery.Note) { a.w.Complete(r) }
func (a auditSink) Refused(r audit.RefusedRecord, _ recovery.Note)   { a.w.Refused(r) }
