package recovery

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/pkg/audit"
	"github.com/varta-go/varta/pkg/logthrottle"
	"github.com/varta-go/varta/pkg/vlp"
)

// captureBufSize is the scratch buffer for draining the output pipes (the
// bytes are counted and discarded, or forwarded to the log line by line).
const captureBufSize = 64 << 10

// logEvery is the minimum spacing of repeated identical failure logs.
const logEvery = 10 * time.Second

// Runner decides surfaced stalls and runs the recovery program for the
// ones that pass every gate. All methods must be called from one
// goroutine (the observer's control loop); none of them blocks on a child
// except Shutdown, which waits up to its grace.
type Runner struct {
	opts Options
	env  []string // the child's environment
	path string   // the child's PATH, for the program lookup
	v    Verifier
	a    Auditor
	c    *stats.Counters
	now  func() uint64
	log  *slog.Logger

	debounceNs uint64 // 0: the debounce window is off
	timeoutNs  uint64

	kids    []*child          // outstanding children
	byAgent map[uint32]*child // agent pid → its children (linked by nextSame)
	cursor  int               // rotating start of the reap window
	window  []*child          // scratch for the reap window

	timeouts []*child // children with a deadline, in spawn (= deadline) order
	thead    int

	pending    []Stall
	pendingCap int

	tokens    float64 // spawn token bucket (Options.SpawnRate, SpawnBurst)
	tokensAt  uint64  // observer clock of the last refill
	tokensSet bool

	ledger *ledger
	buf    []byte
	closed bool

	lastLog string
	logLim  logthrottle.Limiter // per distinct message (lastLog)
}

// New checks opts, fills its defaults and returns a Runner. v, a, c and
// now are required; now returns the observer's stall clock in ns and is
// used for debounce, timeouts, durations and record timestamps.
func New(opts Options, v Verifier, a Auditor, c *stats.Counters, now func() uint64) (*Runner, error) {
	o, err := opts.normalize()
	if err != nil {
		return nil, fmt.Errorf("recovery: %w", err)
	}
	if v == nil || a == nil || c == nil || now == nil {
		return nil, fmt.Errorf("recovery: %w: verifier, auditor, counters and clock are required", ErrInvalidOptions)
	}
	r := &Runner{
		opts:       o,
		v:          v,
		a:          a,
		c:          c,
		now:        now,
		log:        o.Logger,
		debounceNs: uint64(o.Debounce),
		timeoutNs:  uint64(o.Timeout),
		logLim:     logthrottle.Every(logEvery),
		byAgent:    make(map[uint32]*child),
		pendingCap: 2 * o.OutstandingCapacity,
		ledger:     newLedger(o.LedgerCapacity),
	}
	r.env = childEnv(o)
	r.path = envPath(r.env)
	if o.CaptureStdio {
		r.buf = make([]byte, min(captureBufSize, o.CaptureBytes+1))
	} else {
		r.buf = make([]byte, captureBufSize) // output forwarded to the log
	}
	return r, nil
}

// Command returns the configured program and its source, defaults filled
// ("" program: only a Planner's argument lists run).
func (r *Runner) Command() (program, source string) { return r.opts.Program, r.opts.Source }

// Outstanding returns the number of children not yet reaped.
func (r *Runner) Outstanding() int { return len(r.kids) }

// Pending returns the number of submitted stalls not yet decided.
func (r *Runner) Pending() int { return len(r.pending) }

// Submit queues a surfaced stall; it is verified and decided at the next
// Tick (or a later one if the spawn budget of that tick is spent). If the
// queue is full (twice the outstanding capacity) the stall is refused at
// once as outstanding_capacity. After Shutdown, Submit does nothing.
func (r *Runner) Submit(s Stall) {
	if r.closed {
		return
	}
	if len(r.pending) >= r.pendingCap {
		r.refuse(s, r.now(), audit.ReasonOutstandingCapacity, s.Service)
		return
	}
	r.pending = append(r.pending, s)
}

// Tick enforces timeouts, reaps finished children (at most
// MaxReapsPerTick, starting where the previous tick stopped), prunes the
// debounce ledger and decides queued stalls (while the spawn token bucket
// has a token, and at most MaxDecisionsPerTick decisions; the rest wait and
// are verified again at a later Tick). It never waits for a child.
func (r *Runner) Tick() {
	if r.closed {
		return
	}
	now := r.now()
	r.enforceTimeouts(now)
	r.reapWindow()
	r.ledger.prune(now, PruneFactor*r.debounceNs)
	r.decidePending()
}

// enforceTimeouts kills every child whose deadline has passed. Deadlines
// are spawn time + Timeout, so the queue is in deadline order.
func (r *Runner) enforceTimeouts(now uint64) {
	for r.thead < len(r.timeouts) {
		c := r.timeouts[r.thead]
		if !c.done && !c.killed {
			if now < c.deadline {
				break
			}
			c.kill()
		}
		r.timeouts[r.thead] = nil
		r.thead++
	}
	if r.thead > 0 && r.thead*2 >= len(r.timeouts) {
		n := copy(r.timeouts, r.timeouts[r.thead:])
		clear(r.timeouts[n:])
		r.timeouts = r.timeouts[:n]
		r.thead = 0
	}
}

// reapWindow visits up to MaxReapsPerTick children from the rotating
// cursor: drains their capture pipes and collects the finished ones.
func (r *Runner) reapWindow() {
	n := len(r.kids)
	if n == 0 {
		return
	}
	k := min(n, r.opts.MaxReapsPerTick)
	start := r.cursor % n
	r.window = r.window[:0]
	for i := range k {
		r.window = append(r.window, r.kids[(start+i)%n])
	}
	for _, c := range r.window {
		r.visit(c)
	}
	clear(r.window)
	r.cursor = start + k
}

// visit drains c's pipes and reaps it if it has finished.
func (r *Runner) visit(c *child) {
	if r.buf != nil {
		c.drain(r.buf, r.opts.CaptureBytes)
	}
	ws, done, err := c.wait()
	if !done {
		return
	}
	if err != nil {
		r.logf("reap", err)
		r.finish(c, audit.OutcomeReapFailed, audit.NoExitCode, 0)
		return
	}
	switch {
	case ws.Exited():
		r.finish(c, audit.OutcomeReaped, ws.ExitStatus(), 0)
	case ws.Signaled() && c.killed:
		r.finish(c, audit.OutcomeKilled, audit.NoExitCode, int(ws.Signal()))
	case ws.Signaled():
		r.finish(c, audit.OutcomeReaped, audit.NoExitCode, int(ws.Signal()))
	default: // not reported without WUNTRACED/WCONTINUED; be safe
		r.finish(c, audit.OutcomeReapFailed, audit.NoExitCode, 0)
	}
}

// finish removes c from the table, writes its complete record and counts
// its outcome. code is the exit status or audit.NoExitCode, sig the
// terminating signal or 0.
func (r *Runner) finish(c *child, outcome audit.Outcome, code, sig int) {
	if r.buf != nil {
		c.drain(r.buf, r.opts.CaptureBytes)
	}
	c.closeCapture()
	r.remove(c)
	now := r.now()
	d := time.Duration(age(now, c.startNs))
	r.a.Complete(audit.CompleteRecord{
		ObserverNs: now,
		AgentPid:   c.agentPid,
		ChildPid:   uint32(c.pid),
		Outcome:    outcome,
		ExitCode:   code,
		Signal:     sig,
		DurationNs: uint64(d),
		StdoutLen:  uint64(c.outLen),
		StderrLen:  uint64(c.errLen),
		Truncated:  c.truncated,
	}, Note{Service: c.service, Ident: c.ident})
	var o stats.Outcome
	switch {
	case outcome == audit.OutcomeKilled:
		o = stats.OutcomeKilled
	case outcome == audit.OutcomeReapFailed:
		// No duration: the child was not seen to finish.
		r.c.RecoveryOutcomes[stats.OutcomeReapFailed].Add(1)
		return
	case code == 0:
		o = stats.OutcomeReapedZero
	default:
		o = stats.OutcomeReapedNonzero
	}
	r.c.RecoveryOutcomes[o].Add(1)
	if r.c.RecoveryDuration != nil {
		r.c.RecoveryDuration.Observe(d)
	}
}

// add puts a spawned child into the table.
func (r *Runner) add(c *child) {
	c.idx = len(r.kids)
	r.kids = append(r.kids, c)
	c.nextSame = r.byAgent[c.agentPid]
	r.byAgent[c.agentPid] = c
	if c.deadline != 0 {
		r.timeouts = append(r.timeouts, c)
	}
}

// remove takes c out of the table (swap with the last) and out of its
// agent's list.
func (r *Runner) remove(c *child) {
	if c.done {
		return
	}
	c.done = true
	last := len(r.kids) - 1
	r.kids[c.idx] = r.kids[last]
	r.kids[c.idx].idx = c.idx
	r.kids[last] = nil
	r.kids = r.kids[:last]
	if head := r.byAgent[c.agentPid]; head == c {
		if c.nextSame == nil {
			delete(r.byAgent, c.agentPid) // keep the map small
		} else {
			r.byAgent[c.agentPid] = c.nextSame
		}
	} else {
		for p := head; p != nil; p = p.nextSame {
			if p.nextSame == c {
				p.nextSame = c.nextSame
				break
			}
		}
	}
	c.nextSame = nil
}

// refill adds the spawn tokens earned since the last refill, up to the
// burst. A clock that reads earlier than the last refill earns nothing.
func (r *Runner) refill(now uint64) {
	if !r.tokensSet {
		r.tokens, r.tokensAt, r.tokensSet = float64(r.opts.SpawnBurst), now, true
		return
	}
	if now > r.tokensAt {
		r.tokens = min(float64(r.opts.SpawnBurst), r.tokens+float64(now-r.tokensAt)*r.opts.SpawnRate/1e9)
		r.tokensAt = now
	}
}

// decidePending decides queued stalls while a spawn token is available
// (a decision that spawns takes one) and within this call's decision
// budget, and keeps the rest, in order, for a later Tick. However often
// it runs, spawn attempts never exceed SpawnBurst + SpawnRate × elapsed.
func (r *Runner) decidePending() {
	r.refill(r.now())
	i := 0
	for i < len(r.pending) && i < r.opts.MaxDecisionsPerTick && r.tokens >= 1 {
		if r.decide(r.pending[i]) {
			r.tokens--
		}
		i++
	}
	n := copy(r.pending, r.pending[i:])
	r.pending = r.pending[:n]
}

// decide takes the decision for one stall (docs/recovery.md §3) and reports
// whether a spawn was attempted.
func (r *Runner) decide(s Stall) (attempted bool) {
	now := r.now()
	switch r.v.Verify(s) {
	case VerdictFresh:
	case VerdictResumed:
		r.refuse(s, now, audit.ReasonSkippedAgentResumed, s.Service)
		return false
	case VerdictRecycled:
		r.refuse(s, now, audit.ReasonSkippedPidRecycled, s.Service)
		return false
	default:
		r.refuse(s, now, audit.ReasonSkippedStallUnverifiable, s.Service)
		return false
	}

	// A child still running for a previous process that held this pid
	// acts on a pid that now names another process: kill it. It stays in
	// the table until reaped, but does not block this process's recovery.
	r.killPrevious(s.Pid, s.Generation)

	// Gate 1: namespace.
	if s.CrossNamespace && !r.opts.AllowCrossNamespace {
		r.refuse(s, now, audit.ReasonCrossNamespaceAgent, s.Service)
		return false
	}
	// Gate 2: origin.
	switch {
	case s.Origin == vlp.OriginSocketModeOnly:
		r.refuse(s, now, audit.ReasonSocketModeOnly, s.Service)
		return false
	case !s.Origin.RecoveryEligible(): // NetworkUnverified, or an unknown origin
		r.refuse(s, now, audit.ReasonUnauthenticatedTransport, s.Service)
		return false
	}
	// Gate 3: debounce window of the same process (none when off).
	if r.debounceNs > 0 && r.ledger.fresh(s.Pid, s.Generation, now, r.debounceNs) {
		r.refuse(s, now, audit.ReasonDebounced, s.Service)
		return false
	}
	// Gate 4: a child for this process still outstanding.
	if r.inFlight(s.Pid, s.Generation) {
		r.refuse(s, now, audit.ReasonOutstandingInFlight, s.Service)
		return false
	}
	// Gate 5: outstanding table full.
	if len(r.kids) >= r.opts.OutstandingCapacity {
		r.refuse(s, now, audit.ReasonOutstandingCapacity, s.Service)
		return false
	}
	// Gate 6: no room in the ledger without evicting a fresh entry.
	if !r.ledger.hasRoom(s.Pid, now, r.debounceNs) {
		r.refuse(s, now, audit.ReasonDebounceCapacity, s.Service)
		return false
	}
	// Gate 7: the service's plan (policy file): restart budget, argument
	// placeholders, or no recovery at all.
	program, source, service := r.opts.Program, r.opts.Source, s.Service
	var argv []string
	var templateLen int
	if r.opts.Planner != nil {
		p := r.opts.Planner.Plan(s, now)
		if p.Service != "" {
			service = p.Service
		}
		switch {
		case p.Refuse.Valid():
			r.refuse(s, now, p.Refuse, service)
			return false
		case p.Skip || (p.Argv == nil && program == ""):
			return false
		case p.Argv != nil:
			argv, program, source = p.Argv, p.Argv[0], p.Source
			templateLen = len(argv) - 1
			for _, a := range argv {
				templateLen += len(a)
			}
		}
	}
	if argv == nil {
		argv, templateLen = buildArgv(r.opts.Program, r.opts.Args, s.Pid)
	}
	// Gate 8: the spawn itself.
	c, err := r.spawn(program, argv)
	if err != nil {
		r.logf("spawn", err)
		r.refuse(s, now, audit.ReasonSpawnFailed, service)
		return true
	}
	c.agentPid, c.gen, c.startNs, c.service, c.ident = s.Pid, s.Generation, now, service, s.Ident
	if r.timeoutNs != 0 {
		c.deadline = now + r.timeoutNs
	}
	r.add(c)
	r.ledger.record(s.Pid, s.Generation, now)
	r.c.RecoveryOutcomes[stats.OutcomeSpawned].Add(1)
	r.a.Spawn(audit.SpawnRecord{
		ObserverNs:  now,
		AgentPid:    s.Pid,
		ChildPid:    uint32(c.pid),
		Mode:        audit.ModeExec,
		Program:     program,
		Source:      source,
		TemplateLen: uint64(templateLen),
	}, Note{Service: service, Ident: s.Ident})
	return true
}

// spawn resolves the program in the child's PATH and starts it.
func (r *Runner) spawn(program string, argv []string) (*child, error) {
	path, err := lookPath(program, r.path)
	if err != nil {
		return nil, err
	}
	return r.start(path, argv)
}

// killPrevious kills outstanding children of pid spawned for another
// (known) generation.
func (r *Runner) killPrevious(pid uint32, gen uint64) {
	if gen == 0 {
		return
	}
	for c := r.byAgent[pid]; c != nil; c = c.nextSame {
		if c.gen != 0 && c.gen != gen {
			c.kill()
		}
	}
}

// DebouncedUntil returns when the debounce window of the process (pid,
// gen) ends (observer ns), or 0 when it is not debounced at now.
func (r *Runner) DebouncedUntil(pid uint32, gen, now uint64) uint64 {
	el, ok := r.ledger.byPid[pid]
	if !ok {
		return 0
	}
	e := el.Value.(*ledgerEntry)
	if !genMatch(e.gen, gen) || age(now, e.at) >= r.debounceNs {
		return 0
	}
	return e.at + r.debounceNs
}

// InFlight reports whether a recovery child for pid (of generation gen,
// 0 = any) is still outstanding.
func (r *Runner) InFlight(pid uint32, gen uint64) bool { return r.inFlight(pid, gen) }

// inFlight reports whether a child for the same process (pid + matching
// generation) is still outstanding.
func (r *Runner) inFlight(pid uint32, gen uint64) bool {
	for c := r.byAgent[pid]; c != nil; c = c.nextSame {
		if genMatch(c.gen, gen) {
			return true
		}
	}
	return false
}

// refuse counts and audits a decision that did not spawn: the one path of
// every refusal, whose counters and audit text come from pkg/audit's
// reason table. service is the stall's, or the Plan's.
func (r *Runner) refuse(s Stall, now uint64, reason audit.Reason, service string) {
	r.c.CountRefusal(reason)
	r.a.Refused(audit.RefusedRecord{ObserverNs: now, AgentPid: s.Pid, Reason: reason.Column(service)},
		Note{Service: service, Ident: s.Ident, Reason: reason})
}

// Shutdown stops the runner: every stall still queued is refused with
// reason shutdown (a refused record each, outcome refused_shutdown), every
// outstanding child's process group gets SIGKILL, and the children are
// reaped, waiting up to grace in total. Each gets its complete record; a
// child that could not be reaped within grace gets one with outcome
// reap_failed. Shutdown blocks; it is the only method that does.
func (r *Runner) Shutdown(grace time.Duration) {
	if r.closed {
		return
	}
	r.closed = true
	now := r.now()
	for _, s := range r.pending {
		r.refuse(s, now, audit.ReasonShutdown, s.Service)
	}
	r.pending = nil
	for _, c := range r.kids {
		c.kill()
	}
	deadline := time.Now().Add(grace)
	for len(r.kids) > 0 {
		r.window = append(r.window[:0], r.kids...)
		for _, c := range r.window {
			r.visit(c)
		}
		if len(r.kids) == 0 || !time.Now().Before(deadline) {
			break
		}
		time.Sleep(min(2*time.Millisecond, time.Until(deadline)))
	}
	r.window = append(r.window[:0], r.kids...)
	for _, c := range r.window {
		r.logf("reap", fmt.Errorf("recovery child %d not reaped within the shutdown grace of %v", c.pid, grace))
		r.finish(c, audit.OutcomeReapFailed, audit.NoExitCode, 0)
	}
	clear(r.window)
	r.window = r.window[:0]
	r.timeouts, r.thead = nil, 0
}

// logf logs a failure, suppressing repeats of the same message for
// logEvery.
func (r *Runner) logf(what string, err error) {
	if r.log == nil {
		return
	}
	msg := err.Error()
	if msg != r.lastLog {
		r.logLim.Restart()
	}
	if !r.logLim.AllowAt(time.Now()) {
		return
	}
	r.log.Warn("recovery "+what+" failed", "err", err, "suppressed", r.logLim.TakeSuppressed())
	r.lastLog = msg
}
