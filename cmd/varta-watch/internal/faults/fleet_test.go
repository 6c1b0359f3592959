package faults

import (
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
)

// pick returns short under -short and long otherwise.
func pick[T any](short, long T) T {
	if testing.Short() {
		return short
	}
	return long
}

// observed is a varta-watch with an events file and a metrics endpoint,
// for the cases that judge a fleet of honest agents.
type observed struct {
	*testsupport.Daemon
	t    *testing.T
	prom *testsupport.MetricsClient
}

// startObserved runs varta-watch (socket, events file, metrics endpoint
// on a free loopback port) with extra args in a fresh directory.
func startObserved(t *testing.T, extra ...string) *observed {
	t.Helper()
	dir := testsupport.ShortDir(t)
	tokenPath, token := testsupport.TokenFile(t, dir)
	w := startWatch(t, dir, append([]string{"--prom-addr", "127.0.0.1:0", "--prom-token-file", tokenPath}, extra...)...)
	t.Cleanup(func() { w.Cmd.Process.Signal(syscall.SIGCONT) }) // before the kill of startWatch's cleanup
	return &observed{Daemon: w, t: t, prom: testsupport.NewMetricsClient(w.PromAddr(), token)}
}

// metrics scrapes the endpoint (failing the test on an error status).
func (o *observed) metrics() map[string]float64 {
	o.t.Helper()
	_, m, err := o.prom.Scrape()
	if err != nil {
		o.t.Fatal(err)
	}
	return m
}

// sum adds every series of the metric name (all label values).
func sum(m map[string]float64, name string) float64 {
	s := 0.0
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			s += v
		}
	}
	return s
}

// delta formats the counters with the given prefixes that moved between
// two scrapes.
func delta(before, after map[string]float64, prefixes ...string) string {
	var keys []string
	for k, v := range after {
		for _, p := range prefixes {
			if strings.HasPrefix(k, p) && v != before[k] {
				keys = append(keys, k)
				break
			}
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  %s +%v", k, after[k]-before[k])
	}
	return b.String()
}

// event is one events-file line.
type event = testsupport.Event

// eventsSize is the events file's size in bytes.
func (o *observed) eventsSize() int64 {
	fi, err := os.Stat(o.EventsFile)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// fleet is a set of real varta-beat processes.
type fleet struct {
	cmds []*exec.Cmd
	pids map[string]bool
	errs []*testsupport.Buffer
}

// startFleet runs n `varta-beat run` processes with args and waits until
// the daemon accepted a beat from each.
func (o *observed) startFleet(n int, args ...string) *fleet {
	o.t.Helper()
	f := &fleet{pids: map[string]bool{}}
	for i := 0; i < n; i++ {
		cmd := exec.Command(beatBin, append([]string{"run"}, args...)...)
		eb := &testsupport.Buffer{}
		cmd.Stderr = eb
		if err := cmd.Start(); err != nil {
			o.t.Fatal(err)
		}
		f.cmds = append(f.cmds, cmd)
		f.errs = append(f.errs, eb)
		f.pids[strconv.Itoa(cmd.Process.Pid)] = true
	}
	o.t.Cleanup(f.stop)
	testsupport.Eventually(o.t, 20*time.Second, "a first beat from every agent", func() bool {
		seen := map[string]bool{}
		for _, e := range o.ReadEvents() {
			if e.Kind == "beat" && f.pids[e.Pid] {
				seen[e.Pid] = true
			}
		}
		return len(seen) == n
	})
	return f
}

func (f *fleet) stop() {
	for _, c := range f.cmds {
		if c.ProcessState == nil {
			c.Process.Signal(syscall.SIGKILL)
			c.Wait()
		}
	}
}

// dropLines counts the lines the agents printed about beats they could
// not send (varta-beat prints at most one a second).
func (f *fleet) dropLines() int {
	n := 0
	for _, e := range f.errs {
		n += strings.Count(e.String(), "\n")
	}
	return n
}

// verdict is what happened to a fleet of honest agents in a window of the
// events file.
type verdict struct {
	stalls   int           // stall lines of honest agents
	stalled  int           // honest agents with a stall
	worstGap time.Duration // longest time between accepted beats of one agent
	gapsOver int           // agents with a gap above the threshold
	beats    int           // accepted beats of honest agents
}

func (v verdict) String() string {
	return fmt.Sprintf("%d false stalls (%d agents); worst gap between accepted beats %v; %d agents with a gap over the threshold; %d beats accepted",
		v.stalls, v.stalled, v.worstGap.Round(time.Millisecond), v.gapsOver, v.beats)
}

// judge examines the events of the agents in pids with from < ns ≤ to.
func judge(evs []event, pids map[string]bool, from, to uint64, threshold time.Duration) verdict {
	var v verdict
	last := map[string]uint64{}
	stalled, gapped := map[string]bool{}, map[string]bool{}
	for _, e := range evs {
		if !pids[e.Pid] {
			continue
		}
		in := e.NS > from && e.NS <= to
		switch e.Kind {
		case "beat":
			if l, ok := last[e.Pid]; ok && in {
				g := time.Duration(e.NS - l)
				v.worstGap = max(v.worstGap, g)
				if g > threshold {
					gapped[e.Pid] = true
				}
			}
			last[e.Pid] = e.NS
			if in {
				v.beats++
			}
		case "stall":
			if in {
				v.stalls++
				stalled[e.Pid] = true
			}
		}
	}
	v.stalled, v.gapsOver = len(stalled), len(gapped)
	return v
}

// lastNs is the observer_ns of the last line.
func lastNs(evs []event) uint64 {
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].NS
}

// otherLines counts, by kind, the lines after from that are not about the
// honest agents.
func otherLines(evs []event, pids map[string]bool, from uint64) map[string]int {
	m := map[string]int{}
	for _, e := range evs {
		if e.NS > from && !pids[e.Pid] {
			m[e.Kind]++
		}
	}
	return m
}
