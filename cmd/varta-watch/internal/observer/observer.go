package observer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/clock"
	"github.com/varta-go/varta/cmd/varta-watch/internal/events"
	"github.com/varta-go/varta/cmd/varta-watch/internal/ingest"
	"github.com/varta-go/varta/cmd/varta-watch/internal/lifecycle"
	"github.com/varta-go/varta/cmd/varta-watch/internal/listener"
	"github.com/varta-go/varta/cmd/varta-watch/internal/procfs"
	"github.com/varta-go/varta/cmd/varta-watch/internal/recovery"
	"github.com/varta-go/varta/cmd/varta-watch/internal/service"
	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/cmd/varta-watch/internal/tracker"
	"github.com/varta-go/varta/pkg/audit"
	"github.com/varta-go/varta/pkg/logthrottle"
	"github.com/varta-go/varta/pkg/vlp"
	"github.com/varta-go/varta/pkg/vlp/secure"
)

// sweepPerTick bounds how many stalled slots are checked for a vanished
// process per tick.
const sweepPerTick = 64

// Observer is a running daemon.
type Observer struct {
	opts  Options
	log   *slog.Logger
	story *story // one line per stall and recovery decision
	c     *stats.Counters
	clk   *clock.Clock
	tr    *tracker.Tracker
	pipe  *ingest.Pipeline
	unix  *listener.Unix
	// drainable holds the listeners drain polls: the Unix socket and,
	// when configured, the UDP one (set once at start).
	drainable []drainable
	exp       *events.Writer
	notif     *lifecycle.Notifier
	hb        *lifecycle.HeartbeatFile
	hw        *lifecycle.HardwareWatchdog
	selfw     *lifecycle.SelfWatchdog
	ping      *lifecycle.WatchdogPinger
	stat      *lifecycle.StatusSender
	audit     *audit.Writer
	rec       *recovery.Runner
	udp       *udpState
	st        *persist

	resolver tracker.Resolver

	// The service layer: registry, identity queue and its resolver
	// goroutine, and the retries of silent agents (control loop only).
	svc       *service.Registry
	idents    chan newStream
	identDone chan struct{}
	retries   map[uint32]retry

	fatal chan error
	alarm *listener.Alarm // the control loop sleeps on it; everything with work for it kicks it
	// tickDue is when the next housekeeping tick is due (listener.Now);
	// tickKicked is set by the receiver that kicked the loop for it
	// (tickIfDue) and cleared by the tick.
	tickDue    atomic.Int64
	tickKicked atomic.Bool
	wg         sync.WaitGroup

	lateLog  atomic.Int64 // wall time of the last onLate log line
	stage    stageName
	iter     atomic.Uint64       // control-loop iterations: the watchdogs' progress signal
	hupLog   logthrottle.Limiter // the SIGHUP reopen line
	lastErr  atomic.Pointer[string]
	lastNow  int64
	pending  []tracker.Stall
	closeFns []func()
	// ctl is the control socket's state; nil without one.
	ctl *controlState
	// shutdownErr collects failures of the orderly shutdown that must
	// make the daemon exit non-zero (records lost from the audit log).
	shutdownErr error
}

type stageName struct {
	mu sync.Mutex
	s  string
}

func (s *stageName) set(v string) { s.mu.Lock(); s.s = v; s.mu.Unlock() }
func (s *stageName) get() string  { s.mu.Lock(); defer s.mu.Unlock(); return s.s }

// Counters returns the daemon's counters (for tests and the metrics view).
func (o *Observer) Counters() *stats.Counters { return o.c }

// Tracker returns the daemon's tracker.
func (o *Observer) Tracker() *tracker.Tracker { return o.tr }

// Start validates nothing (the CLI layer did), binds the listeners, opens
// the files and the metrics endpoint, and announces readiness. On error
// everything opened so far is closed again.
func Start(opts Options) (_ *Observer, err error) {
	if opts.TickInterval <= 0 {
		opts.TickInterval = DefaultTickInterval
	}
	if opts.ClockJumpThreshold <= 0 {
		opts.ClockJumpThreshold = clock.JumpThreshold
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	o := &Observer{
		opts:   opts,
		log:    opts.Logger,
		story:  newStory(opts.Logger),
		hupLog: logthrottle.Every(reopenLogEvery),
		c:      stats.New(),
		clk:    clock.New(opts.ClockSource),
		fatal:  make(chan error, 4),
	}
	defer func() {
		if err != nil {
			o.closeAll()
		}
	}()
	if o.alarm, err = listener.NewAlarm(); err != nil {
		return nil, err
	}
	o.closeFns = append(o.closeFns, o.alarm.Close)

	var pidMax uint32
	if m, perr := procfs.Default.PidMax(); perr == nil {
		pidMax = m
	}
	var selfNS uint64
	if listener.KernelCredentials {
		o.resolver = procfs.Default
		if selfNS, err = procfs.Default.SelfPidNamespace(); err != nil {
			return nil, fmt.Errorf("read own pid namespace: %w", err)
		}
	}
	if err := o.startServices(); err != nil {
		return nil, err
	}
	o.tr, err = tracker.New(tracker.Options{
		Thresholds:          extraThresholds(o.svc),
		Capacity:            opts.TrackerCapacity,
		Threshold:           int64(opts.Threshold),
		Policy:              opts.EvictionPolicy,
		MaxBeatRate:         opts.MaxBeatRate,
		SelfNS:              selfNS,
		AllowCrossNamespace: opts.AllowCrossNamespace,
		Resolver:            o.resolver,
		PidLimit:            pidMax,
	}, o.c)
	if err != nil {
		return nil, err
	}

	// Bind listeners first: a second observer must fail before it touches
	// any file.
	o.unix, err = listener.OpenUnix(opts.Unix, opts.Activated)
	if err != nil {
		return nil, err
	}
	o.unix.HoldBatches()
	o.closeFns = append(o.closeFns, func() { o.unix.Close() })
	o.c.UDSRcvbufBytes.Store(int64(o.unix.RcvBuf()))
	qcap := listener.UnixQueueCapacity()
	if err := o.unix.Pace(opts.DrainInterval, qcap); err != nil {
		return nil, err
	}
	if opts.DrainInterval > 0 && qcap > 0 && qcap < smallUnixQueue {
		o.log.Warn("net.unix.max_dgram_qlen is small: with --drain-interval-ms the Unix socket is read as soon as a quarter of its queue may have filled, so reads are coalesced only at low beat rates; raise it (docs/deploy.md)",
			"queued_datagrams", qcap, "drain_interval", opts.DrainInterval.String())
	}
	if err := o.startUDP(); err != nil {
		return nil, err
	}
	o.drainable = []drainable{o.unix}
	if o.udp != nil {
		o.drainable = append(o.drainable, o.udp.l)
	}
	if err := o.openState(); err != nil {
		return nil, err
	}

	if opts.Export != nil {
		eo := *opts.Export
		if eo.Logf == nil {
			eo.Logf = o.logf
		}
		if eo.Wall == nil {
			// The wall time of an event: now, less how long ago it
			// happened on the stall clock.
			eo.Wall = func(ns uint64) time.Time { return time.Now().Add(-time.Duration(o.clk.Now() - int64(ns))) }
		}
		o.exp, err = events.Open(eo, o.c)
		if err != nil {
			return nil, err
		}
		o.closeFns = append(o.closeFns, func() { o.exp.Close() })
	}

	if err := o.startControl(); err != nil {
		return nil, err
	}
	if err := o.startRecovery(); err != nil {
		return nil, err
	}

	var emit ingest.Emitter
	if o.exp != nil {
		emit = o.exp
	}
	udpOrigin := vlp.OriginNetworkUnverified
	var opener *secure.Opener
	if o.udp != nil {
		udpOrigin, opener = o.udp.origin, o.udp.opener
	}
	o.pipe = ingest.New(ingest.Options{
		SelfUID:           uint32(os.Geteuid()),
		AllowUIDs:         opts.AllowUIDs,
		AllowGIDs:         opts.AllowGIDs,
		GlobalRate:        opts.GlobalBeatRate,
		GlobalBurst:       opts.GlobalBeatBurst,
		PidMax:            pidMax,
		StrictNamespace:   opts.StrictNamespace,
		KernelCredentials: listener.KernelCredentials,
		LateBound:         int64(LateBound(opts.Threshold, opts.DrainInterval)),
		UDPOrigin:         udpOrigin,
		Opener:            opener,
		OnNewStream:       o.onNewStream,
	}, o.tr, o.c, emit, o.signalWake)
	o.pipe.OnLate = o.onLate
	o.pipe.OnFatal = func(err error) {
		select {
		case o.fatal <- err:
		default:
		}
		o.alarm.Kick()
	}

	// Before the metrics endpoint answers: its first scrape already shows
	// the re-adopted agents.
	o.restoreState()
	if err := o.startMetrics(); err != nil {
		return nil, err
	}

	if opts.HeartbeatFile != "" {
		if o.hb, err = lifecycle.NewHeartbeatFile(opts.HeartbeatFile); err != nil {
			return nil, fmt.Errorf("heartbeat file: %w", err)
		}
		if err := o.hb.Write(0, 0); err != nil {
			return nil, fmt.Errorf("heartbeat file: %w", err)
		}
	}
	if opts.HWWatchdog != "" {
		o.hw, err = lifecycle.OpenHardwareWatchdog(opts.HWWatchdog, 30*time.Second)
		if err != nil {
			return nil, err
		}
		o.closeFns = append(o.closeFns, func() {
			if o.hw != nil {
				o.hw.Close()
			}
		})
	}
	o.notif = lifecycle.NewNotifier(opts.NotifySocket)
	return o, nil
}

func (o *Observer) logf(format string, args ...any) {
	o.warn(fmt.Sprintf(format, args...))
}

// warn logs a warning and remembers it as the last error for the
// service-manager status line.
func (o *Observer) warn(msg string, args ...any) {
	o.log.Warn(msg, args...)
	text := msg
	if len(args) >= 2 {
		text = fmt.Sprintf("%s: %v", msg, args[1])
	}
	o.lastErr.Store(&text)
}

func (o *Observer) signalWake() { o.alarm.Kick() }

// Run observes until ctx is done, a fatal error occurs or ShutdownAfter
// elapses, then shuts down in order. SIGHUP reopens the events file.
func (o *Observer) Run(ctx context.Context) error {
	if o.opts.ShutdownAfter > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.opts.ShutdownAfter)
		defer cancel()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	o.identDone = make(chan struct{})
	go o.resolveIdentities()
	o.wg.Add(1)
	go o.receiveUnix()
	if o.udp != nil {
		o.wg.Add(1)
		go o.receiveUDP()
	}

	// Both watchdogs watch the control loop's iteration count and poke the
	// loop awake, so a healthy loop shows progress within microseconds,
	// whatever its housekeeping tick.
	if o.opts.SelfWatchdog > 0 {
		o.selfw = lifecycle.NewSelfWatchdog(o.opts.SelfWatchdog, func() (uint64, string) {
			return o.iter.Load(), o.stage.get()
		}, o.signalWake, lifecycle.DefaultAbort)
	}
	if o.opts.WatchdogInterval > 0 {
		o.ping = lifecycle.NewWatchdogPinger(o.notif, o.opts.WatchdogInterval, o.iter.Load, o.signalWake, o.logf)
	}
	if err := o.notif.Ready(); err != nil {
		o.warn("sd_notify READY=1 failed", "err", err)
	}
	o.stat = lifecycle.NewStatusSender(o.notif, lifecycle.StatusInterval)
	o.updateStatus()
	o.log.Info("observing", "socket", o.unix.Path(), "socket_activated", o.unix.Inherited(), "threshold", o.opts.Threshold.String(),
		"capacity", o.opts.TrackerCapacity, "clock", o.opts.ClockSource.String(), "drain_interval", o.opts.DrainInterval.String())

	err := o.loop(ctx, hup)
	o.log.Info("shutting down", "reason", shutdownReason(ctx, err, o.opts.ShutdownAfter))
	o.shutdown()
	o.story.flush()
	return errors.Join(err, o.shutdownErr)
}

func (o *Observer) receiveUnix() {
	defer o.wg.Done()
	b := listener.NewBatch()
	errLog := logthrottle.Every(receiveErrorLogEvery)
	for {
		n, err := o.unix.Read(b)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			o.pipe.ReceiveError(stats.TransportUnix, err, o.clk.Now())
			if errLog.AllowAt(time.Now()) {
				o.warn("receive on unix socket failed", append([]any{"err", err}, suppressedAttr(&errLog)...)...)
			}
			time.Sleep(time.Millisecond)
			continue
		}
		o.pipe.UnixBatch(b, n, o.clk.Now(), time.Now().UnixNano())
		o.unix.Release()
		o.tickIfDue()
		o.unix.After(n)
	}
}

// receiveErrorLogEvery bounds the log lines about failed receives (each
// is counted in varta_io_errors_total); a line reports how many were
// not logged since the last one.
const receiveErrorLogEvery = 10 * time.Second

// suppressedAttr is the "suppressed" attribute of a rate-limited line: the
// count l held back since the last line, when there is one.
func suppressedAttr(l *logthrottle.Limiter) []any {
	if n := l.TakeSuppressed(); n > 0 {
		return []any{"suppressed", n}
	}
	return nil
}

// smallUnixQueue: below this many queued datagrams per Unix socket the
// daemon warns at start that --drain-interval-ms coalesces little (the
// kernel default is 10 + 1).
const smallUnixQueue = 64

// drainBudget bounds how long a stall decision waits for the receivers to
// hand on what is queued on the sockets (a flood keeps a queue busy).
const drainBudget = 50 * time.Millisecond

// drain waits, at most drainBudget, until every listener has settled:
// every datagram that reached a socket before drain was called has been
// read and processed (listener.Settled). A beat that is waiting in a queue
// when a stall is due is thereby taken (at its kernel arrival time) before
// the stall is decided. Datagrams that arrive during the wait do not
// prolong it: under a steady stream (a large fleet) a queue is never
// empty, and waiting for an empty one would cost every decision the whole
// budget.
// A receiver pausing between drains (--drain-interval-ms) that has not
// settled is woken to read at once. A decision that goes ahead with a
// socket still unsettled when the budget ran out is counted
// (varta_stall_decision_undrained_total): the daemon was behind its
// sockets, and a stall it surfaces then may have a beat still queued.
func (o *Observer) drain() {
	if !drainSockets(listener.Now(), o.drainable, drainBudget, 100*time.Microsecond) {
		o.c.StallDecisionsUndrained.Add(1)
	}
}

// drainable is what drain needs of a listener.
type drainable interface {
	Settled(since int64) bool
	Kick()
}

// drainSockets polls every socket every poll until each has settled for
// since, waking (Kick) the ones that have not, for at most budget after
// the first poll found one unsettled. It reports whether all settled.
func drainSockets(since int64, socks []drainable, budget, poll time.Duration) bool {
	var deadline time.Time
	for {
		settled := true
		for _, s := range socks {
			if !s.Settled(since) {
				s.Kick()
				settled = false
			}
		}
		if settled {
			return true
		}
		now := time.Now()
		if deadline.IsZero() {
			deadline = now.Add(budget)
		} else if now.After(deadline) {
			return false
		}
		time.Sleep(poll)
	}
}

// onLate is ingest's report that a socket was not read for delay ns
// (the daemon was stopped or starved): beats may have been lost to a full
// queue meanwhile, so every agent gets one threshold of grace.
func (o *Observer) onLate(now, delay int64) {
	o.c.ObserverPauses.Add(1)
	o.tr.Grace(now + int64(o.opts.Threshold))
	if last := o.lateLog.Load(); time.Now().UnixNano()-last > int64(10*time.Second) && o.lateLog.CompareAndSwap(last, time.Now().UnixNano()) {
		o.log.Warn("the sockets were not read for a while (daemon stopped or starved); granting agents one threshold of grace",
			"delay", time.Duration(delay).String())
	}
}

// loop is the control loop: the stall deadline, the housekeeping tick,
// wakes from ingest, SIGHUP and fatal errors. Between them it sleeps on
// o.alarm, which every source of work kicks (signalWake, OnFatal,
// requestReload, SIGHUP, ctx): on an idle daemon each tick is then one
// thread waking once, not a runtime timer's hand-off between threads.
func (o *Observer) loop(ctx context.Context, hup <-chan os.Signal) error {
	stop := context.AfterFunc(ctx, o.alarm.Kick)
	defer stop()
	hupc := make(chan struct{}, 1)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-hup:
				select {
				case hupc <- struct{}{}:
				default:
				}
				o.alarm.Kick()
			case <-done:
				return
			}
		}
	}()
	period := o.opts.TickInterval
	// With a drain interval the tick rides on the receivers' drains
	// (tickIfDue) and only falls back to a wake-up of its own one
	// interval after it is due, when nothing was read.
	slack := o.opts.DrainInterval
	o.tickDue.Store(listener.Now() + int64(period))
	o.lastNow = o.clk.Now()
	for {
		if want := o.tickPeriod(); want != period {
			period = want
			o.tickDue.Store(listener.Now() + int64(period))
		}
		o.iter.Add(1)
		o.stage.set("idle")
		stallAt, stall := o.nextStall()
		sleep := time.Duration(o.tickDue.Load() - listener.Now())
		if !o.recoveryBusy() {
			sleep += slack // while recovery is busy its tick is exact
		}
		if stall {
			sleep = min(sleep, time.Duration(stallAt-o.clk.Now()))
		}
		o.alarm.Sleep(sleep)

		if ctx.Err() != nil {
			return nil
		}
		select {
		case err := <-o.fatal:
			return err
		default:
		}
		select {
		case <-hupc:
			if err := o.reload("SIGHUP"); err != nil {
				o.log.Error("reload failed", "err", err)
			}
		default:
		}
		o.takeReloads()
		// Read again: the beats taken meanwhile may have moved it.
		if stallAt, stall = o.nextStall(); stall && o.clk.Now() >= stallAt {
			o.checkClock()
			o.stage.set("stall detection")
			o.surface()
			o.runRetries(o.clk.Now())
		}
		if listener.Now() >= o.tickDue.Load() {
			o.checkClock()
			o.housekeeping()
			o.runRetries(o.clk.Now())
			// A period after this tick was due, not after it ran (it may
			// have ridden on a drain up to one interval late): a drain
			// one interval after this one then finds the next tick due,
			// whereas a period from now would fall a hair after it (the
			// drain's pause began before this tick ran). A tick more
			// than a period late is dropped, not caught up.
			next := o.tickDue.Load() + int64(period)
			if now := listener.Now(); next <= now {
				next = now + int64(period)
			}
			o.tickDue.Store(next)
			o.tickKicked.Store(false)
		}
	}
}

// tickIfDue is called by a receiving goroutine after it handed a batch
// on: if the housekeeping tick is due it kicks the control loop, once per
// tick. The loop's goroutine then runs on the receiver's thread as soon
// as the receiver pauses, so a daemon reading a paced socket wakes once
// per drain for both (docs/observer.md, "Decisions beyond the shared behaviour", its Control loop part).
func (o *Observer) tickIfDue() {
	if o.opts.DrainInterval <= 0 || o.tickKicked.Load() {
		return
	}
	if listener.Now() >= o.tickDue.Load() && o.tickKicked.CompareAndSwap(false, true) {
		o.alarm.Kick()
	}
}

// takeReloads answers every reload request the control socket queued.
func (o *Observer) takeReloads() {
	for {
		select {
		case reply := <-o.reloadChan():
			reply <- o.reload("control socket")
		default:
			return
		}
	}
}

// reload does what SIGHUP asks for: reopen the events file. It runs on
// the control loop and returns what failed.
func (o *Observer) reload(by string) error {
	if o.exp != nil {
		if by == "SIGHUP" {
			o.logReopen() // rate-limited: a SIGHUP storm must not flood the log
		} else {
			o.log.Info("reopening the events file", "by", by)
		}
		o.exp.Reopen()
	}
	if err := o.reloadPolicy(); err != nil {
		return fmt.Errorf("policy file not reloaded (the previous policy stays in force): %w", err)
	}
	return nil
}

// tickPeriod is the housekeeping period for the current load.
func (o *Observer) tickPeriod() time.Duration {
	if o.recoveryBusy() {
		return min(BusyTickInterval, o.opts.TickInterval)
	}
	return o.opts.TickInterval
}

// recoveryBusy reports recovery children running or stalls waiting for a
// spawn token: the tick is then frequent and exact.
func (o *Observer) recoveryBusy() bool {
	return o.rec != nil && (o.rec.Outstanding() > 0 || o.rec.Pending() > 0)
}

// nextStall is the stall clock's time of the next deadline or recovery
// retry, if there is one.
func (o *Observer) nextStall() (int64, bool) {
	next, ok := o.tr.NextDeadline()
	if r, rok := o.nextRetry(); rok && (!ok || r < next) {
		next, ok = r, true
	}
	return next, ok
}

// checkClock counts backward readings and forward jumps of the stall
// clock; after a jump every agent gets one threshold of grace.
func (o *Observer) checkClock() {
	now := o.clk.Now()
	switch {
	case now < o.lastNow:
		o.c.ClockRegression.Add(1)
	case now-o.lastNow > int64(o.opts.ClockJumpThreshold+o.opts.TickInterval):
		o.c.ClockJumpForward.Add(1)
		o.tr.Grace(now + int64(o.opts.Threshold))
		o.log.Warn("stall clock jumped forward; granting agents one threshold of grace",
			"jump", time.Duration(now-o.lastNow).String())
	}
	o.lastNow = now
}

// surface reports every stall due by the time it is called, after the
// beats that had reached the socket queues by then have been read. Stalls
// that fall due during the drain are left for the next call (the timer
// fires at once): a beat that arrived meanwhile may not have been read
// yet. Each stall is stamped with the time it is surfaced, after the
// drain.
func (o *Observer) surface() {
	cutoff := o.clk.Now()
	o.drain()
	now := o.clk.Now()
	o.pending = o.pending[:0]
	o.tr.Due(cutoff, func(s tracker.Stall) {
		s.Surfaced = now
		o.c.StallDetectionLag.Observe(time.Duration(s.Surfaced - s.Deadline))
		o.c.StallsSurfaced.Add(1)
		if o.exp != nil {
			o.exp.Emit(events.Event{Kind: events.KindStall, Ns: uint64(s.Surfaced), Pid: s.Pid, Nonce: s.Nonce, Ident: s.Ident})
		}
		o.svc.NoteStall(s.Pid, s.Ident, s.Surfaced)
		o.story.stall(s, time.Duration(s.Threshold))
		o.pending = append(o.pending, s)
	})
	o.afterStalls(o.pending)
}

// housekeeping runs once per tick.
func (o *Observer) housekeeping() {
	o.pipe.FlushSuppressed(o.clk.Now())
	o.stage.set("liveness sweep")
	o.tr.Sweep(sweepPerTick, procfs.Alive)
	o.pipe.ExpireReplay(time.Now())
	o.expireSnoozes()
	o.stage.set("recovery")
	o.tickRecovery()
	o.stage.set("state")
	o.stateTick()
	ticks := o.c.Ticks.Load() + 1
	if o.hb != nil {
		o.stage.set("heartbeat file")
		if err := o.hb.Write(ticks, uint64(o.clk.Now())); err != nil {
			o.warn("heartbeat file write failed", "err", err)
		}
	}
	if o.hw != nil {
		o.stage.set("hardware watchdog")
		if err := o.hw.Kick(); err != nil {
			o.warn("hardware watchdog kick failed", "err", err)
		}
	}
	o.c.LastLoopUnixNanos.Store(time.Now().UnixNano())
	o.c.Ticks.Store(ticks)
	o.updateStatus()
}

// updateStatus hands the service manager's status line to the status
// sender (which rate-limits what it sends): agents tracked, stalled,
// recoveries outstanding and the last warning.
func (o *Observer) updateStatus() {
	if o.stat == nil || !o.notif.Enabled() {
		return
	}
	text := fmt.Sprintf("%d agents, %d stalled", o.tr.Tracked(), o.tr.Stalled())
	if o.rec != nil {
		text += fmt.Sprintf(", %d recoveries running", o.rec.Outstanding())
	}
	if e := o.lastErr.Load(); e != nil {
		text += "; last error: " + *e
	}
	o.stat.Set(text)
}

// shutdown stops everything in the order docs/observer.md gives
// ("Lifecycle and systemd", shutdown order).
func (o *Observer) shutdown() {
	o.stage.set("shutdown")
	if o.ctl != nil {
		o.ctl.srv.Close() // no operator action while shutting down
	}
	o.unix.Stop() // stop receiving; the socket file goes last (closeAll)
	o.unix.Kick()
	if o.udp != nil {
		o.udp.l.Close()
		o.udp.l.Kick()
	}
	o.wg.Wait()
	if o.stat != nil {
		o.stat.Stop()
	}
	if o.identDone != nil {
		close(o.idents) // no receiver is left to queue into it
		<-o.identDone
	}
	if err := o.notif.Stopping(); err != nil {
		o.log.Warn("sd_notify STOPPING=1 failed", "err", err)
	}
	if o.ping != nil {
		o.ping.Stop()
	}
	if o.selfw != nil {
		o.selfw.Stop()
	}
	o.shutdownRecovery()
	o.saveStateFinal()
	// Audit log and events file are flushed and synced, then the socket
	// file is removed (closeAll runs in reverse opening order); the
	// hardware watchdog is disarmed last, once everything else is done.
	hw := o.hw
	o.hw = nil
	o.closeAll()
	if hw != nil {
		if err := hw.Close(); err != nil {
			o.log.Warn("disarming the hardware watchdog failed", "err", err)
		}
	}
}

func (o *Observer) closeAll() {
	for i := len(o.closeFns) - 1; i >= 0; i-- {
		o.closeFns[i]()
	}
	o.closeFns = nil
}

// shutdownReason says why Run is stopping: a fatal error, the
// --shutdown-after-secs timer or the signal that cancelled ctx.
func shutdownReason(ctx context.Context, err error, after time.Duration) string {
	switch {
	case err != nil:
		return "fatal error: " + err.Error()
	case after > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return "--shutdown-after-secs elapsed (" + after.String() + ")"
	}
	if c := context.Cause(ctx); c != nil && c != context.Canceled {
		return c.Error()
	}
	return "stopped by the caller"
}

// reopenLogEvery bounds the "reopening the events file" line: a SIGHUP
// storm reopens the file every time but logs once per period, with the
// number of reopens not logged since.
const reopenLogEvery = 10 * time.Second

// logReopen logs a SIGHUP reopen, at most once per reopenLogEvery.
func (o *Observer) logReopen() {
	if !o.hupLog.AllowAt(time.Now()) {
		return
	}
	if n := o.hupLog.TakeSuppressed(); n > 0 {
		o.log.Info("SIGHUP: reopening the events file", "unlogged_reopens", n)
		return
	}
	o.log.Info("SIGHUP: reopening the events file")
}
