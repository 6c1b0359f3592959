//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
	"github.com/varta-go/varta/pkg/vlp"
)

// The million-agent benchmark (docs/benchmarks.md, "A million agents").
// It needs root (it raises /proc/sys/kernel/pid_max for the daemon's
// start and puts it back) and hogs a small machine for about half a
// minute, so it runs only when named: -bench MillionAgents.
const (
	millionAgentsEnv = "VARTA_BENCH_MILLION_AGENTS" // fleet size (default 1,048,576)
	millionStopEnv   = "VARTA_BENCH_MILLION_STOP"   // agents that go silent (default 10,000)
	millionNiceEnv   = "VARTA_BENCH_MILLION_NICE"   // run the daemon under nice -n N (e.g. -10)
	millionPinEnv    = "VARTA_BENCH_MILLION_PIN"    // "1": the generator's thread on CPU 0, the daemon on the others
	millionPidMax    = 4194304                      // the kernel's largest pid_max
	millionPeriod    = 5 * time.Second              // every agent beats this often
	millionThreshold = 10 * time.Second             // --threshold-ms
	millionStopAfter = 2                            // beats a silent agent sends before it stops
)

// pidMaxPath is the host's pid_max.
const pidMaxPath = "/proc/sys/kernel/pid_max"

// raisePidMaxForStart writes v to pid_max and returns the function that puts the
// old value back (idempotent). The restore also runs from b.Cleanup and
// when the test process is interrupted (SIGINT, SIGTERM), so the host is
// never left with the raised value.
func raisePidMaxForStart(b *testing.B, v int) (restore func()) {
	b.Helper()
	raw, err := os.ReadFile(pidMaxPath)
	if err != nil {
		b.Skipf("read %s: %v", pidMaxPath, err)
	}
	old := strings.TrimSpace(string(raw))
	if n, _ := strconv.Atoi(old); n >= v {
		return func() {}
	}
	var once sync.Once
	sig := make(chan os.Signal, 1)
	done := make(chan struct{})
	restore = func() {
		once.Do(func() {
			if err := os.WriteFile(pidMaxPath, []byte(old), 0); err != nil {
				fmt.Fprintf(os.Stderr, "restore %s to %s: %v\n", pidMaxPath, old, err)
			}
			signal.Stop(sig)
			close(done)
		})
	}
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case s := <-sig:
			restore()
			fmt.Fprintf(os.Stderr, "%v: %s restored to %s\n", s, pidMaxPath, old)
			os.Exit(1)
		case <-done:
		}
	}()
	b.Cleanup(restore)
	if err := os.WriteFile(pidMaxPath, []byte(strconv.Itoa(v)), 0); err != nil {
		restore()
		b.Skipf("raise %s to %d (needs root): %v", pidMaxPath, v, err)
	}
	return restore
}

// millionLoad is the load generator: n synthetic agents (pids 2 … n+1),
// each beating every period over one connected UDP socket, evenly
// staggered (agent i's beat k is due at start + k·period + i·period/n),
// sent in batches with sendmmsg. Agents for which silent is true stop
// after stopAfter beats.
type millionLoad struct {
	fd        int
	n         int
	period    time.Duration
	silent    []bool
	stopAfter int

	sent    []uint8 // beats sent per agent
	total   uint64  // datagrams the kernel accepted
	failed  uint64  // datagrams the kernel refused (send errors)
	maxLate time.Duration
	nice    int  // the sending thread's nice value (0 = unchanged)
	pin     bool // run the sending thread on CPU 0 only
	// lastSilent is when the last beat of a silent agent was sent.
	lastSilent time.Time
	// progress is the next sequence number to send (k·n + i), for the
	// benchmark to tell when every agent has beaten once.
	progress atomic.Int64
}

// catchUp bounds the generator's rate when it is behind its schedule (a
// busy machine did not run it): at most this many times the fleet's rate,
// so that a late generator does not flood the daemon in bursts no fleet
// beating on its own schedule would send.
const catchUp = 1.25

const sendBatch = 256

func newMillionLoad(b *testing.B, port string, n int) *millionLoad {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { unix.Close(fd) })
	p, _ := strconv.Atoi(port)
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: p, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		b.Fatal(err)
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 8<<20)
	return &millionLoad{fd: fd, n: n, period: millionPeriod, silent: make([]bool, n), stopAfter: millionStopAfter, sent: make([]uint8, n)}
}

// run sends every beat due in [0, until) after start, on schedule, and
// returns when the last one has been sent.
func (l *millionLoad) run(start time.Time, until time.Duration) {
	runtime.LockOSThread()
	if l.pin {
		var set unix.CPUSet
		set.Set(0)
		unix.SchedSetaffinity(0, &set) // this thread only
	}
	if l.nice != 0 || l.pin {
		// The fleet's priority is the daemon's. On Linux a nice value
		// belongs to a thread: this goroutine keeps its thread locked to
		// the end, and the runtime then ends the thread with it.
		unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), l.nice)
	} else {
		defer runtime.UnlockOSThread()
	}
	var (
		hdrs [sendBatch]unix.Mmsghdr
		iovs [sendBatch]unix.Iovec
		bufs [sendBatch][vlp.FrameSize]byte
	)
	for j := range hdrs {
		iovs[j].Base = &bufs[j][0]
		iovs[j].SetLen(vlp.FrameSize)
		hdrs[j].Hdr.Iov = &iovs[j]
		hdrs[j].Hdr.SetIovlen(1)
	}
	step := float64(l.period) / float64(l.n) // ns between two consecutive beats
	end := int(float64(until) / step)        // sequence numbers below end are sent
	next := 0                                // sequence number s = k·n + i: beat k of agent i
	time.Sleep(time.Until(start))
	last, allowance := time.Duration(0), float64(sendBatch)
	for next < end {
		now := time.Since(start)
		allowance = min(allowance+float64(max(now-last, 0))/step*catchUp, 32*sendBatch)
		last = now
		due := min(int(float64(now)/step)+1, end, next+int(allowance))
		allowance -= float64(max(due-next, 0))
		for next < due {
			late := time.Since(start) - time.Duration(float64(next)*step)
			l.maxLate = max(l.maxLate, late)
			cnt, silentInBatch := 0, false
			for ; next < due && cnt < sendBatch; next++ {
				k, i := next/l.n, next%l.n
				if l.silent[i] && k >= l.stopAfter {
					continue
				}
				if l.silent[i] && k == l.stopAfter-1 {
					silentInBatch = true
				}
				f := vlp.Frame{Status: vlp.StatusOk, Pid: uint32(i + 2), Nonce: uint64(k + 1)}
				f.Encode(&bufs[cnt])
				l.sent[i]++
				cnt++
			}
			for off := 0; off < cnt; {
				r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(l.fd), uintptr(unsafe.Pointer(&hdrs[off])), uintptr(cnt-off), 0, 0, 0)
				if e != 0 {
					if e == unix.EINTR {
						continue
					}
					// The first datagram of the rest was refused: count it
					// and go on with the next.
					l.failed++
					l.sent[agentOf(&bufs[off])]--
					off++
					continue
				}
				l.total += uint64(r)
				off += int(r)
			}
			if silentInBatch {
				l.lastSilent = time.Now()
			}
			l.progress.Store(int64(next))
		}
		if next < end {
			time.Sleep(500 * time.Microsecond)
		}
	}
}

func agentOf(w *[vlp.FrameSize]byte) int {
	var f vlp.Frame
	vlp.Decode(w[:], &f)
	return int(f.Pid) - 2
}

// procStatus returns the kB value of field (VmRSS, VmHWM) of pid.
func procStatus(b *testing.B, pid int, field string) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n * 1024
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// udpDrops returns the kernel's drop count of the IPv4 UDP socket bound to
// port (the last column of /proc/net/udp): datagrams lost to a full
// receive buffer.
func udpDrops(b *testing.B, port string) uint64 {
	raw, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		b.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	local := fmt.Sprintf(":%04X", p)
	for _, l := range strings.Split(string(raw), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) > 2 && strings.HasSuffix(f[1], local) {
			n, _ := strconv.ParseUint(f[len(f)-1], 10, 64)
			return n
		}
	}
	b.Fatalf("no UDP socket on port %s in /proc/net/udp", port)
	return 0
}

func loadAvg() string {
	raw, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func millionEnvInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// BenchmarkMillionAgents runs the real daemon (built without the race
// detector) with 1,048,576 agents beating every 5 s over plain UDP:
// synthetic pids 2 … 1,048,577 from one in-process load generator, below
// pid_max raised to 4,194,304 for the daemon's start (it reads pid_max
// once, there; the host's value is put back as soon as the daemon is
// ready, and on any failure). Every agent beats twice; then 10,000 agents
// spread over the fleet go silent while the others keep beating, and the
// lag of each stall — its time in the events file minus (its last beat in
// the events file + the threshold) — is reported (p50, p99, max); one
// early stall fails the benchmark, and so do a missed stall, a stall of
// an agent that kept beating, and any beat sent but not accepted. It also
// reports the daemon's resident memory (before the fleet, with it, after
// a scrape; per-pid series off), its start time (exec to READY=1) and its
// shutdown time (SIGTERM to exit) with the full table.
//
//	go test -run '^$' -bench MillionAgents -benchtime 1x -timeout 10m ./cmd/varta-watch/internal/e2e/
//
// VARTA_BENCH_MILLION_AGENTS and VARTA_BENCH_MILLION_STOP shrink the run;
// VARTA_BENCH_MILLION_NICE=-10 runs the daemon at a higher priority than
// the rest of a busy machine, as a watchdog's unit may (Nice=-10);
// VARTA_BENCH_MILLION_PIN=1 gives the generator's thread CPU 0 and the
// daemon the other CPUs, so that on a small machine the two do not take
// turns on the same cores.
func BenchmarkMillionAgents(b *testing.B) {
	if f := flag.Lookup("test.bench"); f == nil || !strings.Contains(f.Value.String(), "Million") {
		b.Skip("run it by name: -bench MillionAgents")
	}
	if os.Geteuid() != 0 {
		b.Skip("needs root to raise pid_max")
	}
	n := millionEnvInt(b, millionAgentsEnv, 1<<20)
	stop := min(millionEnvInt(b, millionStopEnv, 10000), n)
	if n+2 > millionPidMax {
		b.Fatalf("%d agents do not fit below pid_max %d", n, millionPidMax)
	}
	bin := fastBinary(b)
	for b.Loop() {
		runMillion(b, bin, n, stop)
	}
}

func runMillion(b *testing.B, bin string, n, stop int) {
	// Everything in RAM: the events file of a run is a few hundred MB.
	dir, err := os.MkdirTemp("/dev/shm", "varta-million-")
	if err != nil {
		dir = newDir(b)
	} else {
		os.Chmod(dir, 0o755)
		b.Cleanup(func() { os.RemoveAll(dir) })
	}
	events := filepath.Join(dir, "events.tsv")
	port := testsupport.FreeUDPPort(b)
	notify := filepath.Join(dir, "notify.sock")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	pa, token, tf := promArgs(b, dir)
	args := append([]string{
		"--threshold-ms", strconv.Itoa(int(millionThreshold / time.Millisecond)),
		"--tracker-capacity", strconv.Itoa(n),
		"--udp-port", port, "--i-accept-plaintext-udp", "--udp-bind-addr", "127.0.0.1",
		"--uds-rcvbuf-bytes", strconv.Itoa(256 << 20),
		"--export-file", events,
		"--prom-per-pid=false", "--prom-rate-limit-per-sec", "0"}, pa...)
	load0 := loadAvg()

	restore := raisePidMaxForStart(b, millionPidMax)
	d := &daemon{Daemon: testsupport.NewDaemon(b, dir), t: b}
	argv := append([]string{bin, "--socket", d.Socket}, args...)
	nice := os.Getenv(millionNiceEnv)
	if nice != "" {
		// nice execs the daemon: same pid, every thread at the priority.
		argv = append([]string{"nice", "-n", nice}, argv...)
	}
	pin := os.Getenv(millionPinEnv) == "1" && runtime.NumCPU() > 1
	if pin {
		// taskset execs the daemon too: every thread off CPU 0, which the
		// generator's thread has to itself (or nearly: the test process's
		// other goroutines and the kernel's loopback path share it).
		argv = append([]string{"taskset", "-c", fmt.Sprintf("1-%d", runtime.NumCPU()-1)}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notify)
	began := time.Now()
	d.Run(cmd)
	// Start time: exec until READY=1 (every listener, file and the
	// tracker's table are up).
	nc.SetReadDeadline(time.Now().Add(60 * time.Second))
	buf := make([]byte, 4096)
	for {
		k, err := nc.Read(buf)
		if err != nil {
			b.Fatalf("no READY=1 from varta-watch: %v\n%s", err, d.Stderr.String())
		}
		if bytes.Contains(buf[:k], []byte("READY=1")) {
			break
		}
	}
	startup := time.Since(began)
	restore()   // the daemon read pid_max at its start
	go func() { // drain STATUS= notifications
		for {
			if _, err := nc.Read(buf); err != nil && !os.IsTimeout(err) {
				return
			}
			nc.SetReadDeadline(time.Now().Add(time.Hour))
		}
	}()
	d.usePromAddr(token, tf)
	pid := d.Cmd.Process.Pid
	rssBefore := procStatus(b, pid, "VmRSS")
	drops0 := udpDrops(b, port)

	l := newMillionLoad(b, port, n)
	l.nice, _ = strconv.Atoi(nice)
	l.pin = pin
	stride := n / stop
	var silentPids []int
	for i := stride / 2; i < n && len(silentPids) < stop; i += stride {
		l.silent[i] = true
		silentPids = append(silentPids, i)
	}
	// The silent agents' last beats are due in [period, 2·period); their
	// stalls in [period+threshold, 2·period+threshold). Keep the others
	// beating until every stall is due, plus one second.
	until := millionStopAfter*millionPeriod + millionThreshold + time.Second
	start := time.Now().Add(100 * time.Millisecond)
	cpu0, cpuSelf0 := cpuTicks(b, pid), selfCPU()
	loadDone := make(chan struct{})
	go func() { defer close(loadDone); l.run(start, until) }()

	// Once every agent has beaten once (one period in, later if the
	// machine holds the generator up), every agent is tracked.
	testsupport.Eventually(b, until, "every agent's first beat sent", func() bool { return l.progress.Load() >= int64(n) })
	var tracked float64
	if !testsupport.Poll(5*time.Second, func() bool {
		tracked = d.scrape()["varta_watch_pids_tracked"]
		return int(tracked) == n
	}) {
		b.Errorf("after every agent's first beat %v agents tracked, want %d", tracked, n)
	}
	rssFleet := procStatus(b, pid, "VmRSS")
	t0 := time.Now()
	d.scrape()
	scrapeTime := time.Since(t0)
	rssScrape := procStatus(b, pid, "VmRSS")
	<-loadDone
	loadWall := time.Since(start)
	cpu1, cpuSelf1 := cpuTicks(b, pid), selfCPU()

	// Wait for every stall: due at most a threshold after the last
	// silent beat was sent. No scrape meanwhile: a scrape walks the whole
	// table, and would compete with the stalls being measured.
	time.Sleep(time.Until(l.lastSilent.Add(millionThreshold + time.Second)))
	testsupport.Eventually(b, millionThreshold, "every stall", func() bool {
		return d.scrape()["varta_stalls_surfaced_total"] >= float64(stop)
	})
	time.Sleep(time.Second) // let the events file flush (every 250 ms)
	m := d.scrape()
	rssEnd, hwm := procStatus(b, pid, "VmRSS"), procStatus(b, pid, "VmHWM")
	drops := udpDrops(b, port) - drops0

	// Shutdown time: SIGTERM to exit, with the full table.
	t0 = time.Now()
	d.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.Done:
	case <-time.After(60 * time.Second):
		b.Fatal("varta-watch did not exit within 60 s of SIGTERM")
	}
	shutdown := time.Since(t0)
	if code := d.Cmd.ProcessState.ExitCode(); code != 0 {
		b.Errorf("varta-watch exited %d after SIGTERM", code)
	}

	// Counters: every datagram the kernel took was received and accepted.
	for _, c := range []string{"varta_tracker_capacity_exceeded_total", "varta_tracker_evicted_total",
		"varta_out_of_order_total", "varta_frame_rejected_pid_above_max_total", "varta_export_dropped_total",
		"varta_observer_pause_total", `varta_rate_limited_total{reason="global"}`, `varta_rate_limited_total{reason="per_pid"}`} {
		if v, ok := m[c]; !ok || v != 0 {
			b.Errorf("%s = %v (exported: %v), want 0", c, v, ok)
		}
	}
	if got := m["varta_datagrams_received_total"]; got != float64(l.total) || drops != 0 || l.failed != 0 {
		b.Errorf("sent %d datagrams (%d refused by the kernel on send), %d dropped by the kernel at the daemon's socket, the daemon received %v",
			l.total, l.failed, drops, got)
	}

	b.Logf("load: %d datagrams in %v (%.0f/s), refused on send %d, kernel drops at the daemon %d, generator max lateness %v",
		l.total, loadWall.Round(time.Millisecond), float64(l.total)/loadWall.Seconds(), l.failed, drops, l.maxLate.Round(time.Microsecond))
	// The events file: beats per agent, the silent agents' last beats,
	// the stalls.
	lags, spurious, missed, badNonce, beatMismatch := millionLags(b, events, l)
	if l.maxLate >= millionThreshold-millionPeriod {
		// Beats that late leave an agent silent past the threshold: its
		// stall is real, the run is not a measurement.
		b.Errorf("the load generator fell %v behind its schedule (threshold − period = %v): the machine did not run it; the stalls of agents that kept beating below are real",
			l.maxLate.Round(time.Millisecond), millionThreshold-millionPeriod)
	}
	if spurious != 0 || missed != 0 || badNonce != 0 || beatMismatch != 0 {
		b.Errorf("%d stalls of agents that kept beating, %d silent agents without a stall, %d stalls naming another last nonce, %d agents whose beats in the events file differ from the beats sent",
			spurious, missed, badNonce, beatMismatch)
	}
	if len(lags) == 0 {
		b.Fatal("no stall measured")
	}
	slices.Sort(lags)
	p50, p99, mx := lags[len(lags)/2], lags[len(lags)*99/100], lags[len(lags)-1]
	if lags[0] < 0 {
		b.Errorf("a stall surfaced %.3f ms before its deadline", -lags[0])
	}
	const hz = 100 // USER_HZ
	daemonCPU := float64(cpu1-cpu0) / hz / loadWall.Seconds()
	genCPU := float64(cpuSelf1-cpuSelf0) / loadWall.Seconds()
	b.ReportMetric(float64(n), "agents")
	b.ReportMetric(p50, "p50-ms")
	b.ReportMetric(p99, "p99-ms")
	b.ReportMetric(mx, "max-ms")
	b.ReportMetric(float64(rssFleet)/float64(n), "rss-B/agent")
	b.ReportMetric(float64(rssScrape)/float64(n), "rss-after-scrape-B/agent")
	b.ReportMetric(float64(hwm)/float64(n), "hwm-B/agent")
	b.ReportMetric(startup.Seconds()*1e3, "startup-ms")
	b.ReportMetric(shutdown.Seconds()*1e3, "shutdown-ms")
	b.ReportMetric(float64(l.total)/loadWall.Seconds(), "datagrams/s")
	mb := func(v int64) string { return fmt.Sprintf("%.1f MB", float64(v)/1e6) }
	b.Logf("agents %d, silent %d, period %v, threshold %v, pid_max %d during start, daemon nice %q, pinned %v; load average before %s, after %s",
		n, stop, millionPeriod, millionThreshold, millionPidMax, nice, pin, load0, loadAvg())
	b.Logf("CPU during the load: daemon %.2f cores, generator (test process) %.2f cores; stall decisions not drained within the budget: %v",
		daemonCPU, genCPU, m["varta_stall_decision_undrained_total"])
	b.Logf("stall lag over %d stalls: p50 %.3f ms, p99 %.3f ms, max %.3f ms, min %.3f ms", len(lags), p50, p99, mx, lags[0])
	b.Logf("RSS: before the fleet %s, with the fleet %s (%.0f B/agent, +%.0f B/agent), after a scrape %s (%.0f B/agent; scrape %v), at the end %s, peak %s (%.0f B/agent)",
		mb(rssBefore), mb(rssFleet), float64(rssFleet)/float64(n), float64(rssFleet-rssBefore)/float64(n),
		mb(rssScrape), float64(rssScrape)/float64(n), scrapeTime.Round(time.Millisecond), mb(rssEnd), mb(hwm), float64(hwm)/float64(n))
	b.Logf("start (exec to READY=1) %v, shutdown (SIGTERM to exit) %v", startup.Round(time.Millisecond), shutdown.Round(time.Millisecond))
}

// selfCPU is the test process's user+system CPU time in seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// millionLags reads the events file once: it counts each agent's beat
// lines (which must equal the beats sent), keeps the silent agents' last
// beat, and returns each stall's lag in ms (stall − last beat −
// threshold), the stalls of agents that were not silent, the silent
// agents without exactly one stall, and the stalls whose nonce is not the
// agent's last.
func millionLags(b *testing.B, path string, l *millionLoad) (lags []float64, spurious, missed, badNonce, beatMismatch int) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	beats := make([]uint8, l.n)
	lastBeat := make([]int64, l.n)
	stalls := make([]uint8, l.n)
	stallNs := make([]int64, l.n)
	stallNonce := make([]uint64, l.n)
	rd := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := rd.ReadSlice('\n')
		if err != nil {
			break
		}
		var cols [6][]byte
		c := 0
		for c < 5 {
			i := bytes.IndexByte(line, '\t')
			if i < 0 {
				break
			}
			cols[c], line = line[:i], line[i+1:]
			c++
		}
		if c != 5 {
			b.Fatalf("events line with %d columns", c+1)
		}
		pid := atoiBytes(cols[2]) - 2
		if pid < 0 || pid >= l.n {
			continue
		}
		ns := int64(atoiBytes(cols[0]))
		switch string(cols[1]) {
		case "beat":
			beats[pid]++
			lastBeat[pid] = ns
		case "stall":
			stalls[pid]++
			stallNs[pid] = ns
			stallNonce[pid] = uint64(atoiBytes(cols[3]))
		}
	}
	for i := 0; i < l.n; i++ {
		if beats[i] != l.sent[i] {
			beatMismatch++
		}
		if !l.silent[i] {
			spurious += int(stalls[i])
			continue
		}
		if stalls[i] != 1 {
			missed++
			continue
		}
		if stallNonce[i] != uint64(l.sent[i]) {
			badNonce++
		}
		lags = append(lags, float64(stallNs[i]-lastBeat[i]-int64(millionThreshold))/1e6)
	}
	return lags, spurious, missed, badNonce, beatMismatch
}

func atoiBytes(b []byte) int {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}
