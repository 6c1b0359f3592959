package listener

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

// settler is what the Unix and UDP listeners share for these tests.
type settler interface {
	Read(*Batch) (int, error)
	Release()
	Quiet() bool
	Queued() bool
	Settled(since int64) bool
	HoldBatches()
}

// settledListeners returns a held Unix and a held UDP listener, each with
// a function that sends one 32-byte datagram to it.
func settledListeners(t *testing.T) []struct {
	name string
	l    settler
	send func()
} {
	path := filepath.Join(t.TempDir(), "s")
	u, err := ListenUnix(UnixOptions{Path: path, Mode: 0o600})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	uc, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uc.Close() })
	p, err := ListenUDP("127.0.0.1:0", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	pc, err := net.DialUDP("udp", nil, p.Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	send := func(c net.Conn) func() {
		return func() {
			if _, err := c.Write(make([]byte, 32)); err != nil {
				t.Fatal(err)
			}
		}
	}
	u.HoldBatches()
	p.HoldBatches()
	return []struct {
		name string
		l    settler
		send func()
	}{{"unix", u, send(uc)}, {"udp", p, send(pc)}}
}

func waitQueued(t *testing.T, l settler) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !l.Queued(); {
		if time.Now().After(deadline) {
			t.Fatal("datagram not queued")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSettledUnderSteadyStream: a datagram that arrives after since does
// not keep the listener from having settled, although it is not quiet;
// one that arrived before since does until its batch is released.
func TestSettledUnderSteadyStream(t *testing.T) {
	for _, c := range settledListeners(t) {
		t.Run(c.name, func(t *testing.T) {
			l := c.l
			if !l.Settled(Now()) {
				t.Fatal("an idle listener has not settled")
			}
			c.send()
			waitQueued(t, l)
			since := Now()
			if l.Settled(since) {
				t.Fatal("settled with a datagram from before since still queued")
			}
			if _, err := l.Read(NewBatch()); err != nil {
				t.Fatal(err)
			}
			c.send() // arrives after since, while the batch is held
			waitQueued(t, l)
			if l.Settled(since) {
				t.Fatal("settled while the batch holding the datagram from before since is held")
			}
			l.Release()
			if !l.Settled(since) {
				t.Fatal("not settled after the batch holding everything from before since was released")
			}
			if l.Quiet() {
				t.Fatal("quiet with a datagram queued")
			}
			if l.Settled(Now()) {
				t.Fatal("settled for a later since with a datagram from before it queued")
			}
			if _, err := l.Read(NewBatch()); err != nil {
				t.Fatal(err)
			}
			l.Release()
			if !l.Settled(Now()) || !l.Quiet() {
				t.Fatal("not settled and quiet once everything was read")
			}
		})
	}
}

// TestSettledNeedsAShortBatch: a full batch may have left datagrams from
// before since in the queue; only a receive that returns less than a full
// batch settles the listener.
func TestSettledNeedsAShortBatch(t *testing.T) {
	c := settledListeners(t)[1] // UDP: the Unix queue may hold only 10 datagrams
	l := c.l
	for i := 0; i < BatchSize+5; i++ {
		c.send()
	}
	waitQueued(t, l)
	time.Sleep(10 * time.Millisecond) // every datagram queued (loopback)
	since := Now()
	b := NewBatch()
	got := 0
	for reads := 0; got < BatchSize+5; reads++ {
		n, err := l.Read(b)
		if err != nil {
			t.Fatal(err)
		}
		got += n
		l.Release()
		if settled := l.Settled(since); settled != (got == BatchSize+5) {
			t.Fatalf("read %d: %d of %d datagrams read (this read %d), settled %v", reads, got, BatchSize+5, n, settled)
		}
	}
}

// TestSettledByArrivalUnderFullBatches: under a stream dense enough that
// every receive returns a full batch, the listener settles for since once
// a released batch held a datagram that arrived at least ArrivalSlack
// after since (the queue is FIFO), although datagrams are still queued and
// no receive came back short. A full batch of datagrams from before since
// does not settle it.
func TestSettledByArrivalUnderFullBatches(t *testing.T) {
	c := settledListeners(t)[1] // UDP: the Unix queue may hold only 10 datagrams
	l := c.l
	for i := 0; i < BatchSize+5; i++ {
		c.send()
	}
	waitQueued(t, l)
	time.Sleep(10 * time.Millisecond) // every datagram queued (loopback)
	since := Now()
	time.Sleep(time.Duration(2 * ArrivalSlack))
	for i := 0; i < 2*BatchSize; i++ {
		c.send()
	}
	time.Sleep(10 * time.Millisecond)
	b := NewBatch()
	if n, err := l.Read(b); err != nil || n != BatchSize {
		t.Fatalf("first read: %d datagrams, %v; want a full batch", n, err)
	}
	l.Release()
	if l.Settled(since) {
		t.Fatal("settled after a full batch of datagrams that all arrived before since")
	}
	if n, err := l.Read(b); err != nil || n != BatchSize {
		t.Fatalf("second read: %d datagrams, %v; want a full batch", n, err)
	}
	if l.Settled(since) {
		t.Fatal("settled while the batch holding the last datagrams from before since is held")
	}
	l.Release()
	if !l.Settled(since) {
		t.Fatal("not settled after a released full batch held datagrams that arrived after since")
	}
	if l.Quiet() {
		t.Fatal("quiet with datagrams still queued: the test did not exercise a full batch")
	}
	if l.Settled(Now()) {
		t.Fatal("settled for a later since with datagrams from before it queued")
	}
}

// TestArrivalMarkWallClockStep: a full batch earns an arrival mark (the
// last datagram's arrival, moved onto Now's clock, less ArrivalSlack, and
// never after the receive's start) only while the wall clock has not
// stepped since the queue was last emptied: a step of more than
// ArrivalSlack between two receives suspends the marks, and a receive
// that empties the queue restores them.
func TestArrivalMarkWallClockStep(t *testing.T) {
	ms := int64(time.Millisecond)
	var r reader
	if _, ok := r.arrivalMark(5 * ms); ok {
		t.Fatal("a mark before any receive noted the clocks")
	}
	const off = -1_000_000 * int64(time.Second) // Now − Unix ns
	r.noteOffset(100*ms, off)
	if _, ok := r.arrivalMark(0); ok {
		t.Fatal("a mark from a datagram without an arrival time")
	}
	// A datagram that arrived 10 ms before the receive.
	if m, ok := r.arrivalMark(90*ms - off); !ok || m != 90*ms-ArrivalSlack {
		t.Fatalf("mark %d, %v; want %d", m, ok, 90*ms-ArrivalSlack)
	}
	// An arrival after the receive's start (a stamp ahead of Now) is held
	// at the start.
	if m, ok := r.arrivalMark(150*ms - off); !ok || m != 100*ms-ArrivalSlack {
		t.Fatalf("mark %d, %v; want %d", m, ok, 100*ms-ArrivalSlack)
	}
	// Drift within ArrivalSlack is not a step.
	r.noteOffset(200*ms, off+ArrivalSlack/2)
	if _, ok := r.arrivalMark(190*ms - off); !ok {
		t.Fatal("no mark after a drift within ArrivalSlack")
	}
	// The wall clock is stepped back by a second: no mark from queued
	// datagrams, whichever clock they were stamped on.
	r.noteOffset(300*ms, off+int64(time.Second))
	if _, ok := r.arrivalMark(290*ms - off); ok {
		t.Fatal("a mark after the wall clock stepped")
	}
	r.noteOffset(310*ms, off+int64(time.Second))
	if _, ok := r.arrivalMark(305*ms - off - int64(time.Second)); ok {
		t.Fatal("a mark before the queue was emptied since the step")
	}
	// A receive that emptied the queue (recv clears stepped) restores
	// them.
	r.stepped = false
	if _, ok := r.arrivalMark(305*ms - off - int64(time.Second)); !ok {
		t.Fatal("no mark after the queue was emptied")
	}
}
