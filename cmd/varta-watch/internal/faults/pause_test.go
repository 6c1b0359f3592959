package faults

import (
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
)

// TestDaemonPaused: the daemon is stopped (SIGSTOP) for 1.5–5 s while 20
// honest agents keep beating every 100 ms (threshold 1 s, recovery
// configured). Their beats are queued or refused by the full socket
// queue meanwhile; none may be declared stalled or recovered. The daemon
// reads the queue before deciding any stall, stamps late beats with their
// kernel arrival time, and — seeing that the queue was not read for longer
// than a quarter of the threshold — gives every agent one threshold.
func TestDaemonPaused(t *testing.T) {
	const threshold = time.Second
	d := startObserved(t, "--threshold-ms", "1000", "--recovery-exec", "/bin/true {pid}")
	a := d.startFleet(20, "--socket", d.Socket, "--interval", "100ms")
	time.Sleep(1500 * time.Millisecond)
	for _, pause := range pick([]time.Duration{1500 * time.Millisecond}, []time.Duration{1500 * time.Millisecond, 3 * time.Second, 5 * time.Second}) {
		t.Run(fmt.Sprint(pause), func(t *testing.T) {
			before := d.metrics()
			from := lastNs(d.ReadEvents())
			if err := d.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			time.Sleep(pause)
			if err := d.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			time.Sleep(threshold + 1500*time.Millisecond) // past the grace: a real stall would show
			evs := d.ReadEvents()
			v := judge(evs, a.pids, from, lastNs(evs), threshold+pause)
			after := d.metrics()
			spawned := after[`varta_recovery_outcomes_total{outcome="spawned"}`] - before[`varta_recovery_outcomes_total{outcome="spawned"}`]
			t.Logf("paused %v: %s; recoveries spawned %.0f; pauses detected %.0f",
				pause, v, spawned, after["varta_observer_pause_total"]-before["varta_observer_pause_total"])
			if v.stalls != 0 || spawned != 0 {
				t.Errorf("%d false stalls, %.0f recoveries after a %v pause", v.stalls, spawned, pause)
			}
			if v.beats == 0 {
				t.Error("no beats accepted after the pause")
			}
		})
	}
	// The grace does not blind the daemon: an agent that really hangs
	// during a pause is still reported, at most one threshold late.
	t.Run("hung agent still reported", func(t *testing.T) {
		hung := a.cmds[0]
		pid := strconv.Itoa(hung.Process.Pid)
		from := lastNs(d.ReadEvents())
		hung.Process.Signal(syscall.SIGSTOP)
		defer hung.Process.Signal(syscall.SIGCONT)
		d.Cmd.Process.Signal(syscall.SIGSTOP)
		time.Sleep(1500 * time.Millisecond)
		d.Cmd.Process.Signal(syscall.SIGCONT)
		resumed := time.Now()
		var stallAt time.Duration
		testsupport.Eventually(t, 4*threshold, "the hung agent's stall", func() bool {
			for _, e := range d.ReadEvents() {
				if e.NS > from && e.Kind == "stall" && e.Pid == pid {
					stallAt = time.Since(resumed)
					return true
				}
			}
			return false
		})
		others := map[string]bool{}
		for p := range a.pids {
			others[p] = p != pid
		}
		evs := d.ReadEvents()
		v := judge(evs, others, from, lastNs(evs), threshold+1500*time.Millisecond)
		t.Logf("agent SIGSTOPped, then the daemon paused 1.5 s: the hung agent reported %v after the daemon resumed (threshold 1 s + one threshold of grace); others: %s",
			stallAt.Round(10*time.Millisecond), v)
		if v.stalls != 0 {
			t.Errorf("%d false stalls of the other agents", v.stalls)
		}
	})
}
