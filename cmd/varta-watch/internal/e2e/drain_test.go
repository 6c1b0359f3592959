package e2e

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
)

// TestDrainIntervalKeepsArrivalTimes: with --drain-interval-ms the
// socket is read at most once per interval at low rates, yet each beat
// is recorded at its kernel arrival time, not at the drain that read it.
// A beat sent while the receiver pauses reaches the events file late (so
// the reads are coalesced), and the gap between the two beats' times is
// the gap between their sends, not the interval.
func TestDrainIntervalKeepsArrivalTimes(t *testing.T) {
	// Not parallel: it judges a 1 s pause and sends bracketed to the
	// millisecond, which other tests' load on 2 cores would blur.
	const interval = time.Second
	d := start(t, "--threshold-ms", "60000", "--drain-interval-ms", strconv.Itoa(int(interval/time.Millisecond)))
	s := d.dial()
	pid := strconv.Itoa(os.Getpid())
	// A first beat, before which the socket was never drained, counts
	// from its read; then the receiver pauses once and waits for the next
	// datagram.
	s.beat(1)
	d.WaitEvents(5*time.Second, "first beat", func(evs []event) bool { return len(testsupport.Filter(evs, "beat", pid)) == 1 })
	time.Sleep(interval + 200*time.Millisecond)
	// Each send is bracketed by clock readings: the true gap between the
	// two arrivals lies between the inner and the outer bracket.
	a0 := time.Now()
	s.beat(2) // read at once (the receiver was waiting); a pause follows
	a1 := time.Now()
	d.WaitEvents(5*time.Second, "beat A", func(evs []event) bool { return len(testsupport.Filter(evs, "beat", pid)) == 2 })
	time.Sleep(100 * time.Millisecond)
	b0 := time.Now()
	s.beat(3)
	b1 := time.Now()
	evs := d.WaitEvents(10*time.Second, "beat B", func(evs []event) bool { return len(testsupport.Filter(evs, "beat", pid)) == 3 })
	seenB := time.Since(b1)
	beats := testsupport.Filter(evs, "beat", pid)
	gotGap := time.Duration(beats[2].NS - beats[1].NS)
	lo, hi := b0.Sub(a1), b1.Sub(a0)
	t.Logf("beat B in the events file %v after its send; recorded gap A-B %v, sent gap between %v and %v", seenB, gotGap, lo, hi)
	if seenB < interval/4 {
		// Without coalescing it is read at once and flushed within 250 ms;
		// with it, it waits for the drain ~900 ms after its send.
		t.Fatalf("beat B appeared %v after its send: the read was not coalesced", seenB)
	}
	const slack = 5 * time.Millisecond
	if gotGap < lo-slack || gotGap > hi+slack {
		t.Fatalf("recorded gap %v, sent gap between %v and %v: the beat time is not the arrival time", gotGap, lo, hi)
	}
}

// TestDrainIntervalNoFalseStall: while steady traffic keeps the receiver
// pausing between drains, an agent's beat that arrives shortly before its
// deadline often waits in the queue past that deadline (for up to the
// 200 ms interval); the daemon drains before deciding, so no stall is
// surfaced. When the agent then falls silent its
// stall comes at its deadline, not at the next drain.
func TestDrainIntervalNoFalseStall(t *testing.T) {
	// Not parallel: an agent beats 80 ms before each deadline; other
	// tests' load would make it oversleep and leave no conclusion.
	const (
		threshold = 800 * time.Millisecond
		interval  = 200 * time.Millisecond // the largest for this threshold
		period    = 720 * time.Millisecond // each beat 80 ms before the deadline
		beats     = 7
	)
	d := start(t, "--threshold-ms", strconv.Itoa(int(threshold/time.Millisecond)),
		"--drain-interval-ms", strconv.Itoa(int(interval/time.Millisecond)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Filler: beats every 150 ms from the test process, so that every
	// read is followed by a pause and the socket is read only once per
	// interval.
	s := d.dial()
	fillerDone := make(chan struct{})
	go func() {
		defer close(fillerDone)
		for n := uint64(1); ctx.Err() == nil; n++ {
			s.beat(n)
			time.Sleep(150 * time.Millisecond)
		}
	}()
	defer func() { cancel(); <-fillerDone }()
	time.Sleep(300 * time.Millisecond)
	var sched []string
	for n := 1; n <= beats; n++ {
		if n > 1 {
			sched = append(sched, "+"+period.String())
		}
		sched = append(sched, strconv.Itoa(n))
	}
	_, apid := d.agent(ctx, "self", strings.Join(sched, ","), 5*time.Second, nil)
	agent := strconv.Itoa(apid)
	evs := d.WaitEvents(time.Duration(beats)*period+10*time.Second, "the agent's stall after its last beat",
		func(evs []event) bool {
			got := testsupport.Filter(evs, "beat", agent)
			if len(got) < beats {
				return false
			}
			for _, st := range testsupport.Filter(evs, "stall", agent) {
				if st.NS > got[beats-1].NS {
					return true
				}
			}
			return false
		})
	got := testsupport.Filter(evs, "beat", agent)
	last := got[len(got)-1]
	for _, st := range testsupport.Filter(evs, "stall", agent) {
		if st.NS > last.NS {
			break
		}
		// A stall while the agent beat is false unless the agent itself
		// was silent for a threshold (its sleep overshot on a loaded
		// host): look at the recorded beats around it.
		i := 0
		for i < len(got) && got[i].NS < st.NS {
			i++
		}
		if i > 0 && got[i].NS-got[i-1].NS >= uint64(threshold) {
			t.Skipf("the agent overslept: beats %d and %d arrived %v apart (>= the threshold); no conclusion on this host's load",
				i, i+1, time.Duration(got[i].NS-got[i-1].NS))
		}
		t.Fatalf("stall surfaced between beats %d and %d, recorded %v apart (< the threshold): a false stall while the agent was beating",
			i, i+1, time.Duration(got[i].NS-got[i-1].NS))
	}
	stall := testsupport.Filter(evs, "stall", agent)[0]
	lag := time.Duration(stall.NS - last.NS - uint64(threshold))
	t.Logf("stall lag %v (drain interval %v)", lag, interval)
	if int64(stall.NS-last.NS) < int64(threshold) {
		t.Fatalf("stall surfaced %v before its deadline", -lag)
	}
	if lag >= interval {
		t.Fatalf("stall lag %v: the stall waited for a drain tick instead of coming at its deadline", lag)
	}
}
