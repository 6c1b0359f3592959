package faults

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
	"github.com/varta-go/varta/pkg/audit"
)

// soakEnv sets the soak's duration (make soak SOAK=10m); without it the
// soak runs 60 s, or 25 s under -short.
const soakEnv = "VARTA_SOAK"

// soakContArg runs the test binary as the soak's recovery program:
// "soak-cont DIR PID" sends SIGCONT to PID if DIR/PID exists, i.e. only to
// an agent process the soak started (a recovery of any other pid — a UDP
// agent's made-up one — would be a false stall, and must not signal a
// stranger). It exits 0 either way after printing what it did.
const soakContArg = "soak-cont"

func soakCont(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: soak-cont DIR PID")
		return 2
	}
	pid, err := strconv.Atoi(args[1])
	if err != nil || pid <= 1 {
		fmt.Fprintln(os.Stderr, "soak-cont: bad pid", args[1])
		return 2
	}
	if _, err := os.Stat(filepath.Join(args[0], args[1])); err != nil {
		fmt.Println("not an agent of the soak:", pid)
		return 0
	}
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		fmt.Println("SIGCONT", pid, err)
	}
	return 0
}

func soakDuration(t *testing.T) time.Duration {
	if v := os.Getenv(soakEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 20*time.Second {
			t.Fatalf("%s=%q: must be a duration of at least 20s", soakEnv, v)
		}
		return d
	}
	if testing.Short() {
		return 25 * time.Second
	}
	return 60 * time.Second
}

// Soak shape.
const (
	soakUDPAgents  = 10000
	soakUnixAgents = 200
	soakThreshold  = 4 * time.Second
	soakBeatEvery  = 250 * time.Millisecond // Unix agents
	soakUDPRate    = 1.0                    // beats per second per UDP agent
	soakActEvery   = time.Second            // one induced stall per second
	soakSample     = 2 * time.Second        // resource sampling period
)

// action is one induced stall.
type actionKind string

const (
	actStop actionKind = "stop" // SIGSTOP; the recovery command sends SIGCONT
	actKill actionKind = "kill" // SIGKILL; the agent is replaced
	actExit actionKind = "exit" // SIGTERM: terminal frame, exit 0; replaced
)

type action struct {
	kind    actionKind
	pid     int
	at      time.Time
	stallNs uint64 // observer_ns of the matching stall line (0 = none yet)
	lag     time.Duration
	resumed bool // stop: a beat after the stall
}

// soakAgent is one real agent process on the Unix socket.
type soakAgent struct {
	cmd  *exec.Cmd
	pid  int
	busy bool // an action is in progress
	done chan struct{}
	out  *testsupport.Buffer // what the agent printed: beats it could not send
}

// follower reads the events file as it grows and matches it against the
// schedule.
type follower struct {
	mu       sync.Mutex
	path     string
	lastBeat map[int]uint64 // pid -> observer_ns of its last beat line
	open     map[int]*action
	false_   []string
	beats    uint64
	stalls   uint64
	lines    uint64
}

func (f *follower) expect(a *action) {
	f.mu.Lock()
	f.open[a.pid] = a
	f.mu.Unlock()
}

func (f *follower) line(l string) {
	cols := strings.Split(l, "\t")
	if len(cols) != 6 {
		return
	}
	ns, err1 := strconv.ParseUint(cols[0], 10, 64)
	pid, err2 := strconv.Atoi(cols[2])
	if err1 != nil || err2 != nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lines++
	switch cols[1] {
	case "beat":
		f.beats++
		f.lastBeat[pid] = ns
		if a := f.open[pid]; a != nil && a.stallNs != 0 && ns > a.stallNs {
			a.resumed = true
			delete(f.open, pid)
		}
	case "stall":
		f.stalls++
		a := f.open[pid]
		if a == nil || a.stallNs != 0 {
			f.false_ = append(f.false_, l)
			return
		}
		a.stallNs = ns
		if lb, ok := f.lastBeat[pid]; ok {
			a.lag = time.Duration(ns-lb) - soakThreshold
		}
		if a.kind != actStop {
			delete(f.open, pid)
		}
	}
}

// run follows the file until stop is closed and the file is drained.
func (f *follower) run(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	var file *os.File
	for file == nil {
		var err error
		if file, err = os.Open(f.path); err != nil {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	defer file.Close()
	r := bufio.NewReaderSize(file, 1<<20)
	var partial string
	stopping := false
	for {
		l, err := r.ReadString('\n')
		if err == nil {
			f.line(partial + strings.TrimSuffix(l, "\n"))
			partial = ""
			continue
		}
		partial += l
		if err != io.EOF || stopping {
			return
		}
		select {
		case <-stop:
			stopping = true // one more pass to the end
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// sample is one reading of the daemon's resources.
type sample struct {
	at         time.Duration // since the start
	rssKiB     int
	fds        int
	cpuTicks   uint64
	goroutines float64
}

func procCPUTicks(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fields) < 13 {
		return 0
	}
	u, _ := strconv.ParseUint(fields[11], 10, 64)
	k, _ := strconv.ParseUint(fields[12], 10, 64)
	return u + k
}

const clkTck = 100 // USER_HZ on Linux

func percentile(xs []time.Duration, p float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(i, 0)]
}

// TestSoak runs 10,000 UDP agents (varta-beat load) and 200 real agent
// processes on the Unix socket against one daemon with recovery, an audit
// log and a state directory, induces one stall per second (SIGSTOP
// recovered by the recovery command's SIGCONT, SIGKILL, SIGTERM with a
// terminal frame; killed and exited agents are replaced), and checks the
// events file, the audit log and the metrics against the schedule: no
// false stall, no missed stall, every stopped agent recovered exactly
// once and nothing else recovered, resources flat after the warm-up.
func TestSoak(t *testing.T) {
	dur := soakDuration(t)
	warm := min(10*time.Second, dur/3)
	lastAction := dur - soakThreshold - 4*time.Second
	dir := testsupport.ShortDir(t)
	tokPath := filepath.Join(dir, "prom.token")
	var tb [32]byte
	rand.Read(tb[:])
	token := hex.EncodeToString(tb[:])
	if err := os.WriteFile(tokPath, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port)
	pc.Close()
	pidDir := filepath.Join(dir, "agent-pids")
	if err := os.Mkdir(pidDir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	auditPath := filepath.Join(dir, "audit.log")
	w := startWatch(t, dir,
		"--threshold-ms", strconv.FormatInt(soakThreshold.Milliseconds(), 10),
		"--tracker-capacity", "16384",
		"--udp-port", port, "--udp-bind-addr", "127.0.0.1", "--i-accept-plaintext-udp",
		"--plaintext-udp-i-accept-recovery-on-unauthenticated-transport",
		"--prom-addr", "127.0.0.1:0", "--prom-token-file", tokPath,
		"--recovery-exec", self+" "+soakContArg+" "+pidDir+" {pid}", "--recovery-debounce-ms", "1000",
		"--recovery-audit-file", auditPath,
		"--state-dir", filepath.Join(dir, "state"),
		"--uds-rcvbuf-bytes", "4194304")
	mc := testsupport.NewMetricsClient(w.PromAddr(), token)
	start := time.Now()

	fol := &follower{path: filepath.Join(dir, "events.tsv"), lastBeat: map[int]uint64{}, open: map[int]*action{}}
	folStop, folDone := make(chan struct{}), make(chan struct{})
	go fol.run(folStop, folDone)

	// 10,000 UDP agents in one process.
	loadOut := &testsupport.Buffer{}
	load := exec.Command(beatBin, "load", "--udp", "127.0.0.1:"+port, "--agents", strconv.Itoa(soakUDPAgents),
		"--rate", strconv.FormatFloat(soakUDPRate, 'f', -1, 64), "--duration", (dur + 15*time.Second).String())
	load.Stdout, load.Stderr = loadOut, loadOut
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	loadDone := make(chan struct{})
	go func() { load.Wait(); close(loadDone) }()
	t.Cleanup(func() { load.Process.Kill(); <-loadDone })

	// 200 real agent processes.
	var agentsMu sync.Mutex
	var agents []*soakAgent
	everAgent := map[int]*soakAgent{} // by pid, the latest agent with it
	spawn := func() *soakAgent {
		cmd := exec.Command(beatBin, "run", "--socket", w.Socket, "--interval", soakBeatEvery.String())
		cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
		out := &testsupport.Buffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		a := &soakAgent{cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{}), out: out}
		os.WriteFile(filepath.Join(pidDir, strconv.Itoa(a.pid)), nil, 0o644)
		go func() { cmd.Wait(); close(a.done) }()
		return a
	}
	t.Cleanup(func() {
		agentsMu.Lock()
		defer agentsMu.Unlock()
		for _, a := range agents {
			a.cmd.Process.Signal(syscall.SIGCONT)
			a.cmd.Process.Kill()
			<-a.done
		}
	})
	for range soakUnixAgents {
		a := spawn()
		agentsMu.Lock()
		agents = append(agents, a)
		everAgent[a.pid] = a
		agentsMu.Unlock()
	}
	// Lines the agents printed (each one a beat not sent, or a summary).
	agentOutput := func(pid int) string {
		agentsMu.Lock()
		defer agentsMu.Unlock()
		if a := everAgent[pid]; a != nil {
			if o := strings.TrimSpace(a.out.String()); o != "" {
				return o
			}
			return "(nothing)"
		}
		return "(not an agent of the soak)"
	}

	// Resource sampler.
	var samples []sample
	var sampMu sync.Mutex
	sampStop := make(chan struct{})
	sampDone := make(chan struct{})
	go func() {
		defer close(sampDone)
		tick := time.NewTicker(soakSample)
		defer tick.Stop()
		for {
			select {
			case <-sampStop:
				return
			case <-tick.C:
			}
			pid := w.Cmd.Process.Pid
			s := sample{at: time.Since(start), rssKiB: procRSSKiB(pid), fds: procFDs(pid), cpuTicks: procCPUTicks(pid)}
			if code, m, _ := mc.Scrape(); code == 200 {
				s.goroutines = m["go_goroutines"]
			}
			sampMu.Lock()
			samples = append(samples, s)
			sampMu.Unlock()
		}
	}()

	// The schedule: after the warm-up, one action per second on an idle
	// agent, cycling stop, kill, stop, exit.
	kinds := []actionKind{actStop, actKill, actStop, actExit}
	var actions []*action
	time.Sleep(warm)
	next := 0
	for i := 0; time.Since(start) < lastAction; i++ {
		time.Sleep(time.Until(start.Add(warm + time.Duration(i)*soakActEvery)))
		agentsMu.Lock()
		var a *soakAgent
		for k := 0; k < len(agents); k++ {
			c := agents[(next+k)%len(agents)]
			if !c.busy {
				a = c
				next = (next + k + 1) % len(agents)
				break
			}
		}
		if a == nil {
			agentsMu.Unlock()
			continue
		}
		act := &action{kind: kinds[i%len(kinds)], pid: a.pid, at: time.Now()}
		a.busy = true
		fol.expect(act)
		actions = append(actions, act)
		switch act.kind {
		case actStop:
			a.cmd.Process.Signal(syscall.SIGSTOP)
			go func(a *soakAgent) {
				// Idle again once recovered (or at the end).
				time.Sleep(3 * soakThreshold)
				agentsMu.Lock()
				a.busy = false
				agentsMu.Unlock()
			}(a)
		case actKill, actExit:
			sig := syscall.SIGKILL
			if act.kind == actExit {
				sig = syscall.SIGTERM
			}
			a.cmd.Process.Signal(sig)
			<-a.done
			if act.kind == actExit && a.cmd.ProcessState.ExitCode() != 0 {
				t.Errorf("agent %d: exit %d after SIGTERM, want 0", a.pid, a.cmd.ProcessState.ExitCode())
			}
			repl := spawn() // agentsMu is held
			everAgent[repl.pid] = repl
			for j := range agents {
				if agents[j] == a {
					agents[j] = repl
				}
			}
		}
		agentsMu.Unlock()
	}
	// Let the last actions play out.
	time.Sleep(time.Until(start.Add(dur)))

	// Final metrics, then stop the daemon before the load and the agents,
	// so that their end is not a stall.
	code, m, _ := mc.Scrape()
	if code != 200 {
		t.Fatalf("final scrape: %d", code)
	}
	close(sampStop)
	<-sampDone
	if ec := w.Stop(syscall.SIGTERM); ec != 0 {
		t.Errorf("varta-watch exit %d at SIGTERM", ec)
	}
	close(folStop)
	<-folDone
	load.Process.Signal(syscall.SIGTERM)
	<-loadDone

	// The checker.
	fol.mu.Lock()
	defer fol.mu.Unlock()
	var lags []time.Duration
	var missed []string
	stops, counts := 0, map[actionKind]int{}
	stopped := map[uint32]int{} // pid -> stop actions that stalled
	for _, a := range actions {
		counts[a.kind]++
		if a.stallNs == 0 {
			missed = append(missed, fmt.Sprintf("%s pid %d at +%v", a.kind, a.pid, a.at.Sub(start).Round(time.Millisecond)))
			continue
		}
		lags = append(lags, a.lag)
		if a.kind == actStop {
			stops++
			stopped[uint32(a.pid)]++
			if !a.resumed {
				missed = append(missed, fmt.Sprintf("stop pid %d at +%v: stalled but never beat again (not recovered)", a.pid, a.at.Sub(start).Round(time.Millisecond)))
			}
		}
	}
	if len(fol.false_) > 0 {
		var b strings.Builder
		for _, l := range fol.false_[:min(len(fol.false_), 10)] {
			pid, _ := strconv.Atoi(strings.Split(l, "\t")[2])
			fmt.Fprintf(&b, "%s\n  the agent printed: %.300s\n", l, agentOutput(pid))
		}
		t.Errorf("%d false stalls:\n%s", len(fol.false_), b.String())
	}
	if len(missed) > 0 {
		t.Errorf("%d missed: %s", len(missed), strings.Join(missed, "; "))
	}

	// Audit log: intact, one spawn per stopped agent, nothing else spawned.
	if out, err := exec.Command(auditBin, "verify", auditPath).CombinedOutput(); err != nil {
		t.Errorf("varta-audit verify: %v\n%s", err, out)
	}
	spawns := map[uint32]int{}
	nspawn := 0
	af, err := os.Open(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(af)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "#") {
			continue
		}
		r, err := audit.ParseLine(sc.Bytes())
		if err != nil || r.Kind != audit.KindSpawn {
			continue
		}
		nspawn++
		spawns[r.Spawn.AgentPid]++
	}
	af.Close()
	for pid, n := range spawns {
		if stopped[pid] == 0 {
			t.Errorf("audit: recovery spawned for pid %d, which was never stopped", pid)
		} else if n != stopped[pid] {
			t.Errorf("audit: %d spawns for pid %d, which was stopped %d times", n, pid, stopped[pid])
		}
	}
	if nspawn != stops {
		t.Errorf("audit: %d spawn records, want %d (one per stopped agent)", nspawn, stops)
	}

	// Metrics agree with the events file and the audit log.
	if got := m["varta_stalls_surfaced_total"]; uint64(got) != fol.stalls {
		t.Errorf("varta_stalls_surfaced_total %v, events file has %d stall lines", got, fol.stalls)
	}
	if got := m[`varta_recovery_outcomes_total{outcome="spawned"}`]; int(got) != nspawn {
		t.Errorf("spawned outcomes %v, audit has %d spawn records", got, nspawn)
	}
	if got := m[`varta_agents{state="stalled"}`]; got != 0 {
		t.Errorf("varta_agents{state=\"stalled\"} = %v at the end, want 0 (killed agents retired, stopped ones recovered)", got)
	}

	// Resources flat after the warm-up: compare the first sample after
	// the warm-up with the last third of the run.
	sampMu.Lock()
	defer sampMu.Unlock()
	var base *sample
	var tail []sample
	for i := range samples {
		s := samples[i]
		if base == nil && s.at >= warm {
			base = &samples[i]
		}
		if s.at >= dur*2/3 {
			tail = append(tail, s)
		}
	}
	var rep strings.Builder
	fmt.Fprintf(&rep, "soak %v: %d UDP agents at %g/s, %d Unix agent processes every %v, threshold %v\n",
		dur, soakUDPAgents, soakUDPRate, soakUnixAgents, soakBeatEvery, soakThreshold)
	fmt.Fprintf(&rep, "actions: %d (stop %d, kill %d, exit %d); stall lines %d; false stalls %d; missed %d\n",
		len(actions), counts[actStop], counts[actKill], counts[actExit], fol.stalls, len(fol.false_), len(missed))
	fmt.Fprintf(&rep, "datagrams %v (%.0f/s); events lines %d (beats %d), dropped %v; rate-limited global %v; state saves %v, failed %v\n",
		m["varta_datagrams_received_total"], m["varta_datagrams_received_total"]/dur.Seconds(), fol.lines, fol.beats,
		m["varta_export_dropped_total"], m[`varta_rate_limited_total{reason="global"}`], m["varta_state_saves_total"], m["varta_state_save_failures_total"])
	fmt.Fprintf(&rep, "detection lag (stall line - last beat line - threshold): p50 %v p99 %v max %v (n=%d)\n",
		percentile(lags, 0.5).Round(time.Microsecond), percentile(lags, 0.99).Round(time.Microsecond), percentile(lags, 1).Round(time.Microsecond), len(lags))
	fmt.Fprintf(&rep, "recoveries: %d spawned (audit), one per stopped agent\n", nspawn)
	if base != nil && len(tail) > 0 {
		maxT := sample{}
		for _, s := range tail {
			maxT.rssKiB = max(maxT.rssKiB, s.rssKiB)
			maxT.fds = max(maxT.fds, s.fds)
			maxT.goroutines = max(maxT.goroutines, s.goroutines)
		}
		first, last := tail[0], tail[len(tail)-1]
		cpuWarm := 0.0
		if len(samples) > 1 {
			if j := slices.IndexFunc(samples, func(s sample) bool { return s.at >= warm }); j >= 0 && j+1 < len(samples) {
				a, b := samples[j], samples[min(j+len(tail), len(samples)-1)]
				cpuWarm = float64(b.cpuTicks-a.cpuTicks) / clkTck / (b.at - a.at).Seconds() * 100
			}
		}
		cpuTail := 0.0
		if last.at > first.at {
			cpuTail = float64(last.cpuTicks-first.cpuTicks) / clkTck / (last.at - first.at).Seconds() * 100
		}
		fmt.Fprintf(&rep, "after warm-up (+%v) → last third max: RSS %.1f → %.1f MiB, fds %d → %d, goroutines %.0f → %.0f; CPU %.1f%% → %.1f%% of one core\n",
			base.at.Round(time.Second), float64(base.rssKiB)/1024, float64(maxT.rssKiB)/1024, base.fds, maxT.fds,
			base.goroutines, maxT.goroutines, cpuWarm, cpuTail)
		if maxT.rssKiB > base.rssKiB*13/10+8<<10 {
			t.Errorf("RSS grew from %d to %d KiB after the warm-up", base.rssKiB, maxT.rssKiB)
		}
		if maxT.fds > base.fds+10 {
			t.Errorf("descriptors grew from %d to %d after the warm-up", base.fds, maxT.fds)
		}
		if maxT.goroutines > base.goroutines+20 {
			t.Errorf("goroutines grew from %.0f to %.0f after the warm-up", base.goroutines, maxT.goroutines)
		}
	}
	fmt.Fprintf(&rep, "load generator:\n%s", loadOut.String())
	t.Log("\n" + rep.String())
}
