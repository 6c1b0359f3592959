package lifecycle

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ErrBadWatchdogUsec reports an unparsable $WATCHDOG_USEC.
var ErrBadWatchdogUsec = errors.New("WATCHDOG_USEC is not a positive number of microseconds")

// ParseWatchdog interprets $WATCHDOG_USEC and $WATCHDOG_PID as read by the
// caller. It returns the service manager's watchdog timeout, or 0 when no
// watchdog is requested for this process (usec empty or "0", or pid set and
// naming another process). Pings are due every timeout/2.
func ParseWatchdog(usec, pid string, selfPid int) (time.Duration, error) {
	if usec == "" {
		return 0, nil
	}
	if pid != "" {
		p, err := strconv.Atoi(pid)
		if err != nil {
			return 0, fmt.Errorf("WATCHDOG_PID %q: %w", pid, err)
		}
		if p != selfPid {
			return 0, nil
		}
	}
	v, err := strconv.ParseUint(usec, 10, 64)
	if err != nil || v > uint64(1<<63-1)/uint64(time.Microsecond) {
		return 0, fmt.Errorf("%w: %q", ErrBadWatchdogUsec, usec)
	}
	return time.Duration(v) * time.Microsecond, nil
}

// PingInterval is the WATCHDOG=1 period for a service-manager watchdog
// timeout: a third of it, so that consecutive pings (and READY=1 and the
// first ping) stay within half the timeout even when a ping is delayed by
// scheduling, as systemd requires.
func PingInterval(timeout time.Duration) time.Duration { return timeout / 3 }

// WatchdogPinger sends WATCHDOG=1 every interval, but only when the
// observer loop's progress counter has advanced since the previous ping, so
// that a wedged loop makes the service manager restart the daemon. After
// each check it pokes the loop (poke), so that a healthy loop advances the
// counter before the next check whatever else it is doing: the pings do not
// depend on the loop's housekeeping tick.
type WatchdogPinger struct {
	n        *Notifier
	interval time.Duration
	progress func() uint64
	poke     func()
	logf     func(format string, args ...any)

	sent, skipped, failed atomic.Uint64

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// NewWatchdogPinger starts pinging through n every interval (pass
// PingInterval of the watchdog timeout). progress returns a counter the
// observer loop advances on every iteration; poke (nil: none) wakes the loop
// without blocking so that it iterates. Send errors go to logf (nil discards
// them), once per run of consecutive failures. With a disabled Notifier or a
// non-positive interval nothing is started.
func NewWatchdogPinger(n *Notifier, interval time.Duration, progress func() uint64, poke func(), logf func(format string, args ...any)) *WatchdogPinger {
	if poke == nil {
		poke = func() {}
	}
	p := &WatchdogPinger{n: n, interval: interval, progress: progress, poke: poke, logf: logf,
		stop: make(chan struct{}), done: make(chan struct{})}
	if !n.Enabled() || interval <= 0 || progress == nil {
		close(p.done)
		return p
	}
	go p.run()
	return p
}

func (p *WatchdogPinger) run() {
	defer close(p.done)
	t := time.NewTicker(p.interval)
	defer t.Stop()
	last := p.progress()
	p.poke()
	failing := false
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		cur := p.progress()
		p.poke()
		if cur == last {
			p.skipped.Add(1)
			continue
		}
		last = cur
		if err := p.n.Watchdog(); err != nil {
			p.failed.Add(1)
			if !failing && p.logf != nil {
				p.logf("watchdog ping: %v", err)
			}
			failing = true
			continue
		}
		failing = false
		p.sent.Add(1)
	}
}

// Sent returns how many pings were delivered.
func (p *WatchdogPinger) Sent() uint64 { return p.sent.Load() }

// Skipped returns how many intervals passed without progress (no ping).
func (p *WatchdogPinger) Skipped() uint64 { return p.skipped.Load() }

// Failed returns how many pings could not be sent.
func (p *WatchdogPinger) Failed() uint64 { return p.failed.Load() }

// Stop stops the pinger and waits for its goroutine. It is idempotent.
func (p *WatchdogPinger) Stop() {
	p.stopOnce.Do(func() { close(p.stop) })
	<-p.done
}
