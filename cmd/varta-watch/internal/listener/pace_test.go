package listener

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestPauseFor(t *testing.T) {
	const iv = 250 * time.Millisecond
	for _, tc := range []struct {
		name     string
		interval time.Duration
		capacity int
		read     int
		elapsed  time.Duration
		want     time.Duration
	}{
		{"nothing read: the whole interval", iv, 11, 0, time.Second, iv},
		{"unknown capacity: one batch's time", iv, 0, 40, 10 * time.Millisecond, 16 * time.Millisecond},
		{"low rate: the whole interval", iv, 65537, 12, 250 * time.Millisecond, iv},
		// 200/s: one batch (64) accumulates in 320 ms.
		{"200/s: the whole interval", iv, 65537, 50, iv, iv},
		// 1,000/s: one batch accumulates in 64 ms.
		{"1,000/s: one batch's time", iv, 65537, 10, 10 * time.Millisecond, 64 * time.Millisecond},
		// 250,000/s (a bulk sender read on readiness): 0.26 ms, no pause.
		{"bulk sender: no pause", iv, 65537, 5, 20 * time.Microsecond, 0},
		// 50 datagrams/s into a queue of 11: a quarter (2.75) fills in 55 ms.
		{"default Unix queue at 50/s: shortened", iv, 11, 50, time.Second, 55 * time.Millisecond},
		// 10,000/s into a queue of 11: 0.275 ms, below minPause.
		{"high rate: no pause", iv, 11, 50, 10 * time.Millisecond, 0},
		{"interval below minPause", 500 * time.Microsecond, 0, 0, 0, 0},
		{"clock went back: no pause", iv, 11, 5, -time.Second, 0},
		{"huge elapsed does not overflow", iv, 1 << 20, 1, 100 * 365 * 24 * time.Hour, iv},
		{"one batch per interval: still low", iv, 65537, BatchSize, iv, iv},
		// A bulk sender (or a fleet above a batch per interval) is read
		// on readiness, whatever the queue's capacity.
		{"more than a batch per drain: no pause", iv, 65537, BatchSize + 1, time.Second, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := pauseFor(tc.interval, tc.capacity, tc.read, tc.elapsed); got != tc.want {
				t.Fatalf("pauseFor(%v, %d, %d, %v) = %v, want %v", tc.interval, tc.capacity, tc.read, tc.elapsed, got, tc.want)
			}
		})
	}
}

// batchResult is one Read of a paced receiving loop.
type batchResult struct {
	n        int
	arrivals []int64
	err      error
}

// pacedLoop runs the receiving loop the observer runs (Read, hand on,
// After) and reports each batch.
func pacedLoop(read func(*Batch) (int, error), after func(int)) <-chan batchResult {
	out := make(chan batchResult, 16)
	go func() {
		b := NewBatch()
		for {
			n, err := read(b)
			r := batchResult{n: n, err: err}
			for i := 0; i < n; i++ {
				r.arrivals = append(r.arrivals, b.D[i].Arrival)
			}
			out <- r
			if err != nil {
				return
			}
			after(n)
		}
	}()
	return out
}

func next(t *testing.T, c <-chan batchResult, within time.Duration) batchResult {
	t.Helper()
	select {
	case r := <-c:
		if r.err != nil {
			t.Fatalf("Read: %v", r.err)
		}
		return r
	case <-time.After(within):
		t.Fatalf("no batch within %v", within)
	}
	return batchResult{}
}

// TestPacedReads: with a drain interval, datagrams that arrive while the
// receiver pauses are read together in one batch at the next drain, each
// with its own kernel arrival time; Kick ends a pause at once; Close
// ends the loop. Both transports.
func TestPacedReads(t *testing.T) {
	const interval = time.Second // far longer than the sends below take
	for _, tc := range []struct {
		name string
		open func(t *testing.T) (read func(*Batch) (int, error), after func(int), kick func(), closeFn func() error, send func([]byte))
	}{
		{"unix", func(t *testing.T) (func(*Batch) (int, error), func(int), func(), func() error, func([]byte)) {
			u, p := listen(t)
			if err := u.Pace(interval, 0); err != nil {
				t.Fatal(err)
			}
			c := dial(t, p)
			return u.Read, u.After, u.Kick, u.Close, func(b []byte) { c.Write(b) }
		}},
		{"udp", func(t *testing.T) (func(*Batch) (int, error), func(int), func(), func() error, func([]byte)) {
			u, err := ListenUDP("127.0.0.1:0", 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { u.Close() })
			if err := u.Pace(interval); err != nil {
				t.Fatal(err)
			}
			c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(u.Addr().String())))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return u.Read, u.After, u.Kick, u.Close, func(b []byte) { c.Write(b) }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			read, after, kick, closeFn, send := tc.open(t)
			batches := pacedLoop(read, after)
			send(make([]byte, 32))
			if r := next(t, batches, 5*time.Second); r.n != 1 {
				t.Fatalf("first batch: %d datagrams, want 1", r.n)
			}
			// The receiver now pauses for the interval: five datagrams
			// 20 ms apart are all queued when it drains.
			sentAt := time.Now()
			for i := 0; i < 5; i++ {
				send(make([]byte, 32))
				time.Sleep(20 * time.Millisecond)
			}
			r := next(t, batches, 5*time.Second)
			if time.Since(sentAt) > interval/2 && r.n != 5 {
				t.Skipf("the sends took %v (loaded machine): cannot tell a coalesced read", time.Since(sentAt))
			}
			if r.n != 5 {
				t.Fatalf("drain after the pause: %d datagrams in one batch, want 5", r.n)
			}
			if KernelCredentials { // arrival times are Linux-only
				// On UDP the kernel stamps a datagram that reached the
				// socket without a time at its read instead (seen now and
				// then on the first one here): the beat then counts as
				// read late, never early. Judge the last four there.
				first := 0
				if tc.name == "udp" {
					first = 1
				}
				span := time.Duration(r.arrivals[4] - r.arrivals[first])
				if span < time.Duration(4-first)*15*time.Millisecond {
					t.Fatalf("arrival times span %v for sends 80 ms apart: they are not the kernel's (%v)", span, r.arrivals)
				}
				for i := first + 1; i < 5; i++ {
					if r.arrivals[i] <= r.arrivals[i-1] {
						t.Fatalf("arrival times not increasing: %v", r.arrivals)
					}
				}
			}
			// Kick: a datagram sent during the next pause is read at once.
			time.Sleep(50 * time.Millisecond)
			send(make([]byte, 32))
			kicked := time.Now()
			kick()
			r = next(t, batches, 5*time.Second)
			if waited := time.Since(kicked); waited > interval/2 {
				t.Fatalf("Kick: the datagram was read %v later, not at once", waited)
			}
			if r.n != 1 {
				t.Fatalf("after Kick: %d datagrams, want 1", r.n)
			}
			// Close ends a paused or parked loop.
			closeFn()
			select {
			case r := <-batches:
				if !errors.Is(r.err, net.ErrClosed) {
					t.Fatalf("Read after Close: %+v", r)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Close did not end the paced loop")
			}
		})
	}
}

// TestPacedQuiet: Quiet is false while a datagram waits during a pause,
// so the observer's drain before a stall decision kicks the receiver.
func TestPacedQuiet(t *testing.T) {
	u, p := listen(t)
	u.HoldBatches()
	if err := u.Pace(time.Second, 0); err != nil {
		t.Fatal(err)
	}
	c := dial(t, p)
	batches := pacedLoop(u.Read, func(n int) { u.Release(); u.After(n) })
	c.Write(make([]byte, 32))
	next(t, batches, 5*time.Second)
	c.Write(make([]byte, 32))
	waitUntil(t, func() bool { return u.Queued() })
	if u.Quiet() {
		t.Fatal("Quiet with a datagram queued during a pause")
	}
	u.Kick()
	next(t, batches, 5*time.Second)
	waitUntil(t, u.Quiet)
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5 s")
		}
	}
}
