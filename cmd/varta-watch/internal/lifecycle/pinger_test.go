package lifecycle

import (
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseWatchdog(t *testing.T) {
	tests := []struct {
		name, usec, pid string
		want            time.Duration
		wantErr         error
	}{
		{"unset", "", "", 0, nil},
		{"zero", "0", "", 0, nil},
		{"eight seconds", "8000000", "", 8 * time.Second, nil},
		{"for us", "2000000", "4242", 2 * time.Second, nil},
		{"for another process", "2000000", "1", 0, nil},
		{"garbage", "8s", "", 0, ErrBadWatchdogUsec},
		{"negative", "-1", "", 0, ErrBadWatchdogUsec},
		{"overflow", "18446744073709551615", "", 0, ErrBadWatchdogUsec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseWatchdog(tt.usec, tt.pid, 4242)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	if _, err := ParseWatchdog("1", "x", 1); err == nil {
		t.Fatal("bad WATCHDOG_PID accepted")
	}
}

// TestWatchdogPingerFollowsProgress: pings flow while the counter advances,
// stop while it is frozen, and resume when it advances again.
func TestWatchdogPingerFollowsProgress(t *testing.T) {
	path := tempSocketPath(t)
	conn := listenNotify(t, path)
	var tick atomic.Uint64
	var advancing atomic.Bool
	advancing.Store(true)
	stopTicker := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // the observer loop
		for {
			select {
			case <-stopTicker:
				return
			case <-time.After(time.Millisecond):
			}
			if advancing.Load() {
				tick.Add(1)
			}
		}
	})
	defer func() { close(stopTicker); wg.Wait() }()

	p := NewWatchdogPinger(NewNotifier(path), 20*time.Millisecond, tick.Load, nil, t.Logf)
	defer p.Stop()

	// Phase 1: progress → pings.
	for i := range 3 {
		if got, ok := recv(t, conn, 5*time.Second); !ok || got != "WATCHDOG=1" {
			t.Fatalf("ping %d: got %q (ok=%v) while the loop advances", i, got, ok)
		}
	}

	// Phase 2: frozen → no pings.
	advancing.Store(false)
	skipped := p.Skipped()
	eventually(t, "an interval without progress", func() bool { return p.Skipped() > skipped })
	drain(t, conn)
	sent, skipped := p.Sent(), p.Skipped()
	eventually(t, "three more intervals without progress", func() bool { return p.Skipped() >= skipped+3 })
	if got := p.Sent(); got != sent {
		t.Fatalf("%d pings sent while the loop was frozen", got-sent)
	}
	if got, ok := recv(t, conn, 0); ok {
		t.Fatalf("received %q while the loop was frozen", got)
	}

	// Phase 3: progress again → pings resume.
	advancing.Store(true)
	if got, ok := recv(t, conn, 5*time.Second); !ok || got != "WATCHDOG=1" {
		t.Fatalf("after progress resumed: got %q (ok=%v), want WATCHDOG=1", got, ok)
	}
	if p.Failed() != 0 {
		t.Fatalf("%d failed pings", p.Failed())
	}
}

func drain(t *testing.T, conn *net.UnixConn) {
	t.Helper()
	for {
		if _, ok := recv(t, conn, 0); !ok {
			return
		}
	}
}

func TestWatchdogPingerStopAndLeaks(t *testing.T) {
	const fn = "lifecycle.(*WatchdogPinger).run("
	before := goroutinesIn(fn, 0)
	path := tempSocketPath(t)
	listenNotify(t, path)
	var tick atomic.Uint64
	p := NewWatchdogPinger(NewNotifier(path), time.Millisecond, func() uint64 { return tick.Add(1) }, nil, nil)
	eventually(t, "a ping", func() bool { return p.Sent() > 0 })
	if n := goroutinesIn(fn, before+1); n != before+1 {
		t.Fatalf("%d pinger goroutines, want %d", n, before+1)
	}
	p.Stop()
	p.Stop()
	if n := goroutinesIn(fn, before); n != before {
		t.Fatalf("%d pinger goroutines after Stop, want %d", n, before)
	}
	sent := p.Sent()
	time.Sleep(10 * time.Millisecond)
	if p.Sent() != sent {
		t.Fatal("pings sent after Stop")
	}

	// Disabled configurations start nothing.
	for _, q := range []*WatchdogPinger{
		NewWatchdogPinger(NewNotifier(""), time.Millisecond, tick.Load, nil, nil),
		NewWatchdogPinger(NewNotifier(path), 0, tick.Load, nil, nil),
	} {
		q.Stop()
	}
	if n := goroutinesIn(fn, before); n != before {
		t.Fatalf("disabled pingers started goroutines: %d", n-before)
	}
}

func TestWatchdogPingerLogsFailureOnce(t *testing.T) {
	var mu sync.Mutex
	var logged []string
	logf := func(f string, a ...any) { mu.Lock(); logged = append(logged, f); mu.Unlock() }
	var tick atomic.Uint64
	p := NewWatchdogPinger(NewNotifier(tempSocketPath(t)), time.Millisecond, func() uint64 { return tick.Add(1) }, nil, logf)
	eventually(t, "five failed pings", func() bool { return p.Failed() >= 5 })
	p.Stop()
	mu.Lock()
	defer mu.Unlock()
	if len(logged) != 1 || !strings.HasPrefix(logged[0], "watchdog ping") {
		t.Fatalf("logged %q, want one message for the run of failures", logged)
	}
}

// TestWatchdogPingerSlowTick: with a loop whose own tick is far slower than
// the ping interval, the pinger's poke keeps a ping in every interval: pings
// do not wait for the loop's tick.
func TestWatchdogPingerSlowTick(t *testing.T) {
	path := tempSocketPath(t)
	conn := listenNotify(t, path)
	count, poke := slowLoop(t, time.Hour)
	const interval = 20 * time.Millisecond
	p := NewWatchdogPinger(NewNotifier(path), interval, count.Load, poke, t.Logf)
	defer p.Stop()
	for i := range 10 {
		m, ok := recv(t, conn, time.Second)
		if !ok {
			t.Fatalf("ping %d: none within 1s (sent %d, skipped %d)", i, p.Sent(), p.Skipped())
		}
		if m != "WATCHDOG=1" {
			t.Fatalf("got %q", m)
		}
	}
	if p.Skipped() > 1 {
		t.Fatalf("%d intervals skipped with a healthy loop", p.Skipped())
	}
}

func TestPingInterval(t *testing.T) {
	for _, d := range []time.Duration{time.Second, 10 * time.Second, 2 * time.Second} {
		if got := PingInterval(d); got <= 0 || got > d/2 {
			t.Fatalf("PingInterval(%v) = %v, want in (0, %v]", d, got, d/2)
		}
	}
}
