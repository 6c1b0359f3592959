package e2e

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/cmd/varta-watch/internal/listener"
	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
	"github.com/varta-go/varta/pkg/vlp"
	"github.com/varta-go/varta/pkg/vlp/secure"
)

// The benchmarks here run the real binary built without the race detector,
// so that the numbers mean what they say. docs/benchmarks.md records them.

var (
	fastOnce sync.Once
	fastBin  string
	fastErr  error
)

func fastBinary(b *testing.B) string {
	b.Helper()
	fastOnce.Do(func() {
		dir := filepath.Dir(binPath)
		fastBin = filepath.Join(dir, "varta-watch-fast")
		out, err := exec.Command("go", "build", "-o", fastBin, "github.com/varta-go/varta/cmd/varta-watch").CombinedOutput()
		if err != nil {
			fastErr = fmt.Errorf("%v: %s", err, out)
		}
	})
	if fastErr != nil {
		b.Fatal(fastErr)
	}
	return fastBin
}

// startFast starts the non-race binary on dir/s.sock with extra args,
// with the metrics endpoint when prom is set, and waits until it listens.
func startFast(b *testing.B, dir string, prom bool, extra ...string) *daemon {
	b.Helper()
	d := &daemon{Daemon: testsupport.NewDaemon(b, dir), t: b}
	args := append([]string{"--socket", d.Socket}, extra...)
	var token, tf string
	if prom {
		var pa []string
		pa, token, tf = promArgs(b, dir)
		args = append(append(args, pa...), "--prom-rate-limit-per-sec", "0")
	}
	cmd := exec.Command(fastBinary(b), args...)
	if gmp := os.Getenv("VARTA_BENCH_DAEMON_GOMAXPROCS"); gmp != "" {
		cmd.Env = append(os.Environ(), "GOMAXPROCS="+gmp)
	}
	d.Run(cmd)
	d.WaitSocket(20 * time.Second)
	if prom {
		d.usePromAddr(token, tf)
	}
	return d
}

// udpPace spreads a synthetic UDP fleet's beats: a pause after every
// `every` datagrams, and roundGap between rounds.
type udpPace struct {
	every    uint32
	pause    time.Duration
	roundGap time.Duration
}

// beatUDPFleet sends three rounds of beats (nonces 1-3) from the synthetic
// pids 2 ... agents+1 to 127.0.0.1:port, so that a datagram the socket
// dropped in one round is made up for by the next.
func beatUDPFleet(b *testing.B, port string, agents uint32, p udpPace) {
	b.Helper()
	c, err := net.Dial("udp", "127.0.0.1:"+port)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var w [vlp.FrameSize]byte
	for round := uint64(1); round <= 3; round++ {
		for pid := uint32(2); pid < agents+2; pid++ {
			f := vlp.Frame{Pid: pid, Nonce: round}
			f.Encode(&w)
			c.Write(w[:])
			if pid%p.every == 0 {
				time.Sleep(p.pause)
			}
		}
		time.Sleep(p.roundGap)
	}
}

// BenchmarkStallDetectionLag measures, at 10,000 agents, how long after
// its deadline (last accepted beat + threshold) each stall is surfaced,
// using the observer's own timestamps from the events file. It fails if a
// single stall is surfaced early.
//
// Sub-benchmarks: --drain-interval-ms 0 and 100 (the stalls must come at
// their deadlines, not at the next drain).
func BenchmarkStallDetectionLag(b *testing.B) {
	for _, ms := range []int{0, 100} {
		b.Run(fmt.Sprintf("drain=%dms", ms), func(b *testing.B) { benchStallDetectionLag(b, ms) })
	}
}

func benchStallDetectionLag(b *testing.B, drainMS int) {
	const agents = 10000
	const threshold = 500 * time.Millisecond
	for b.Loop() {
		dir := newDir(b)
		port := testsupport.FreeUDPPort(b)
		events := filepath.Join(dir, "events.tsv")
		startFast(b, dir, false, "--threshold-ms", strconv.Itoa(int(threshold/time.Millisecond)),
			"--tracker-capacity", "16384", "--udp-port", port, "--i-accept-plaintext-udp", "--udp-bind-addr", "127.0.0.1",
			"--uds-rcvbuf-bytes", strconv.Itoa(32<<20), "--export-file", events, "--drain-interval-ms", strconv.Itoa(drainMS))
		beatUDPFleet(b, port, agents, udpPace{every: 500, pause: 2 * time.Millisecond, roundGap: 100 * time.Millisecond})
		lastBeat := map[string]uint64{}
		stalls := map[string]uint64{}
		deadline := time.Now().Add(60 * time.Second)
		for len(stalls) < agents && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
			clear(lastBeat)
			clear(stalls)
			raw, _ := os.ReadFile(events)
			for _, l := range strings.Split(string(raw), "\n") {
				cols := strings.Split(l, "\t")
				if len(cols) != 6 {
					continue
				}
				ns, _ := strconv.ParseUint(cols[0], 10, 64)
				switch cols[1] {
				case "beat":
					lastBeat[cols[2]] = ns
				case "stall":
					stalls[cols[2]] = ns
				}
			}
		}
		if len(stalls) != agents {
			b.Fatalf("%d stalls surfaced for %d agents", len(stalls), agents)
		}
		lags := make([]float64, 0, agents)
		for pid, s := range stalls {
			lag := int64(s) - int64(lastBeat[pid]) - int64(threshold)
			if lag < 0 {
				b.Fatalf("pid %s: stall surfaced %v before its deadline", pid, time.Duration(-lag))
			}
			lags = append(lags, float64(lag)/1e6)
		}
		slices.Sort(lags)
		b.ReportMetric(lags[len(lags)/2], "p50-ms")
		b.ReportMetric(lags[len(lags)*99/100], "p99-ms")
		b.ReportMetric(lags[len(lags)-1], "max-ms")
	}
}

// BenchmarkUnixIngestThroughput compares the daemon's ingest rate over the
// Unix socket with a minimal receiver process (the same batched recvmmsg,
// counting only), both fed by the same sender process on the same machine
// in the same run. A shared 2-core VM makes single runs swing by 2-5x, so
// the two receivers run side by side and alternate: each of the rounds
// sends the same burst to one, then to the other, and the medians are
// compared. Unix datagram sockets block the sender while the receiver is
// behind, so the time the sender takes is the pair's throughput; the
// receivers' CPU time per datagram (their capacity) is reported too.
//
// Sub-benchmarks: the daemon with --drain-interval-ms 0 and 100 (a burst
// keeps the reads full, so pacing must cost nothing here).
func BenchmarkUnixIngestThroughput(b *testing.B) {
	for _, ms := range []int{0, 100} {
		b.Run(fmt.Sprintf("drain=%dms", ms), func(b *testing.B) { benchUnixIngestThroughput(b, ms) })
	}
}

func benchUnixIngestThroughput(b *testing.B, drainMS int) {
	const rounds = 7
	const perRound = 100000
	for b.Loop() {
		// Minimal receiver: a separate process, like the daemon, that
		// only counts datagrams.
		dir := newDir(b)
		sock := filepath.Join(dir, "min.sock")
		mr := exec.Command(agentPath)
		mr.Env = append(os.Environ(), minRecvEnv+"="+sock+"|"+strconv.Itoa(rounds*perRound))
		out, err := mr.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		stdin, err := mr.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := mr.Start(); err != nil {
			b.Fatal(err)
		}
		defer func() { stdin.Close(); mr.Process.Kill(); mr.Wait() }()
		rd := bufio.NewReader(out)
		if l, err := rd.ReadString('\n'); err != nil || l != "ready\n" {
			b.Fatalf("minimal receiver: %q %v", l, err)
		}

		// The daemon: no events file, rate limits off so that every frame
		// is accepted.
		d := startFast(b, newDir(b), true, "--threshold-ms", "60000", "--max-beat-rate", "0", "--global-beat-rate", "0",
			"--drain-interval-ms", strconv.Itoa(drainMS))
		sock2 := d.Socket
		var minRates, daemonRates []float64
		var minCPU, daemonCPU uint64
		for r := 0; r < rounds; r++ {
			c0 := cpuTicks(b, mr.Process.Pid)
			t0 := time.Now()
			blast(b, sock, 1, perRound)
			minRates = append(minRates, perRound/time.Since(t0).Seconds())
			minCPU += cpuTicks(b, mr.Process.Pid) - c0

			c0 = cpuTicks(b, d.Cmd.Process.Pid)
			t0 = time.Now()
			blast(b, sock2, 1, perRound)
			daemonRates = append(daemonRates, perRound/time.Since(t0).Seconds())
			daemonCPU += cpuTicks(b, d.Cmd.Process.Pid) - c0
		}
		// The senders block while a receiver is behind, so when they are
		// done everything but one receive buffer has been processed; check
		// that the rest arrives.
		if l, err := rd.ReadString('\n'); err != nil || l != "done\n" {
			b.Fatalf("minimal receiver: %q %v", l, err)
		}
		for deadline := time.Now().Add(10 * time.Second); ; {
			if d.scrape()["varta_datagrams_received_total"] >= rounds*perRound {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("the daemon did not receive every datagram")
			}
			time.Sleep(20 * time.Millisecond)
		}
		slices.Sort(minRates)
		slices.Sort(daemonRates)
		mMin, mDaemon := minRates[rounds/2], daemonRates[rounds/2]
		b.ReportMetric(mMin, "minimal-datagrams/s")
		b.ReportMetric(mDaemon, "daemon-datagrams/s")
		b.ReportMetric(100*mDaemon/mMin, "ratio-%")
		total := float64(rounds * perRound)
		b.ReportMetric(float64(minCPU)*1e7/total, "minimal-cpu-ns/datagram")
		b.ReportMetric(float64(daemonCPU)*1e7/total, "daemon-cpu-ns/datagram")
		b.ReportMetric(100*float64(minCPU)/float64(daemonCPU), "capacity-ratio-%")
	}
}

// BenchmarkIdleCPU50Agents measures the CPU time of a receiver process
// while 50 agent processes beat once a second over its Unix socket, each
// at its own phase (spread evenly over the second, so that no two beats
// arrive together: the worst case for coalescing). Sub-benchmarks: the
// daemon with each --drain-interval-ms (0 = a read per datagram), and
// two floors under the same fleet: the minimal Go receiver (the daemon's
// batched recvmmsg through the runtime's poller, counting only) and the
// minimal C receiver (testdata/minrecv.c: blocking recvmmsg and a CRC-32C
// check; skipped without a C compiler). CPU time is the process's CPU
// clock (nanoseconds, every thread), read before and after a 15 s window.
//
// Each is measured under two fleets. fleet=varta-beat is the reference
// agent (varta-beat run, whose socket is not in any poller). fleet=go-net
// is a Go program writing through net.UnixConn, whose socket the Go
// runtime keeps in its epoll set: every datagram the receiver takes then
// makes the kernel wake that poller (unix_write_space), in the receiver's
// system call and on its CPU time (docs/benchmarks.md, "Idle CPU and
// drain interval").
func BenchmarkIdleCPU50Agents(b *testing.B) {
	for _, fleet := range []string{"varta-beat", "go-net"} {
		b.Run("fleet="+fleet, func(b *testing.B) {
			for _, ms := range []int{0, 100, 250, 500, 1000} {
				b.Run(fmt.Sprintf("daemon/drain=%dms", ms), func(b *testing.B) {
					for b.Loop() {
						d := startFast(b, newDir(b), false, "--threshold-ms", "5000", "--drain-interval-ms", strconv.Itoa(ms))
						b.ReportMetric(idleCPU(b, fleet, d.Socket, d.Cmd.Process.Pid), "cpu-%")
					}
				})
			}
			b.Run("minimal-go", func(b *testing.B) {
				for b.Loop() {
					msock := filepath.Join(newDir(b), "min.sock")
					mr := exec.Command(agentPath)
					mr.Env = append(os.Environ(), minRecvEnv+"="+msock+"|1000000000")
					b.ReportMetric(idleCPU(b, fleet, msock, startReceiver(b, mr, msock)), "cpu-%")
				}
			})
			b.Run("minimal-c", func(b *testing.B) {
				bin := minimalC(b)
				for b.Loop() {
					msock := filepath.Join(newDir(b), "min.sock")
					b.ReportMetric(idleCPU(b, fleet, msock, startReceiver(b, exec.Command(bin, msock), msock)), "cpu-%")
				}
			})
		})
	}
}

// idleCPU starts 50 agents of fleet (varta-beat or go-net, see
// BenchmarkIdleCPU50Agents) beating once a second at evenly spread phases
// on sock and returns the CPU use of process pid meanwhile, in percent
// of one core.
func idleCPU(b *testing.B, fleet, sock string, pid int) float64 {
	const agents = 50
	const beats = 20
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			p.Process.Kill()
			p.Wait()
		}
	}()
	start := time.Now()
	for i := 0; i < agents; i++ {
		phase := time.Duration(i) * time.Second / agents
		var p *exec.Cmd
		switch fleet {
		case "varta-beat":
			// Started at its phase; it keeps it (one beat per --interval).
			time.Sleep(time.Until(start.Add(phase)))
			p = exec.Command(beatPath, "run", "--socket", sock, "--interval", "1s", "--count", strconv.Itoa(beats))
		case "go-net":
			sched := []string{fmt.Sprintf("+%dms", phase.Milliseconds())}
			for n := 1; n <= beats; n++ {
				sched = append(sched, strconv.Itoa(n), "+1s")
			}
			p = exec.Command(agentPath)
			p.Env = append(os.Environ(), agentEnv+"="+strings.Join([]string{sock, "self", strings.Join(sched, ","), "0s"}, "|"))
		default:
			b.Fatalf("unknown fleet %q", fleet)
		}
		if err := p.Start(); err != nil {
			b.Fatal(err)
		}
		procs = append(procs, p)
	}
	time.Sleep(2 * time.Second) // settle: first contacts done
	t0, w0 := cpuNanos(b, pid), time.Now()
	time.Sleep(15 * time.Second)
	t1, w1 := cpuNanos(b, pid), time.Now()
	return 100 * float64(t1-t0) / float64(w1.Sub(w0))
}

// startReceiver starts a minimal receiver process binding sock, waits
// until it is bound and returns its pid; it is killed at cleanup.
func startReceiver(b *testing.B, cmd *exec.Cmd, sock string) int {
	b.Helper()
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitSocket(b, sock)
	return cmd.Process.Pid
}

var (
	minCOnce sync.Once
	minCBin  string
	minCErr  error
)

// minimalC builds testdata/minrecv.c with cc, or skips without one.
func minimalC(b *testing.B) string {
	b.Helper()
	cc, err := exec.LookPath("cc")
	if err != nil {
		b.Skip("no C compiler (cc) for the minimal C receiver")
	}
	minCOnce.Do(func() {
		minCBin = filepath.Join(filepath.Dir(binPath), "minrecv-c")
		out, err := exec.Command(cc, "-O2", "-o", minCBin, "testdata/minrecv.c").CombinedOutput()
		if err != nil {
			minCErr = fmt.Errorf("cc testdata/minrecv.c: %v: %s", err, out)
		}
	})
	if minCErr != nil {
		b.Fatal(minCErr)
	}
	return minCBin
}

// cpuNanos is the CPU time process pid has used, all threads, in
// nanoseconds: its process CPU-time clock (clock_getcpuclockid), finer
// than the 10 ms ticks of /proc/PID/stat.
func cpuNanos(b *testing.B, pid int) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(int32((^pid)<<3|2), &ts); err != nil { // CPUCLOCK_SCHED of the process
		b.Fatalf("cpu clock of pid %d: %v", pid, err)
	}
	return ts.Nano()
}

func cpuTicks(b *testing.B, pid int) uint64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return ut + st
}

// blast sends n frames from each of k sender processes (the test binary
// in agent mode, strictly increasing nonces) and waits for them.
func blast(b *testing.B, sock string, k, n int) {
	var wg sync.WaitGroup
	for i := 0; i < k; i++ {
		p := exec.Command(agentPath)
		p.Env = append(os.Environ(), agentEnv+"="+strings.Join([]string{sock, "self", "blast:" + strconv.Itoa(n), "0s"}, "|"))
		p.Stderr = os.Stderr
		if err := p.Start(); err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); p.Wait() }()
	}
	wg.Wait()
}

func waitSocket(t testing.TB, p string) {
	t.Helper()
	testsupport.Eventually(t, 20*time.Second, "socket "+p, func() bool {
		_, err := os.Stat(p)
		return err == nil
	})
}

// BenchmarkSecureUDPIngest measures secure datagrams per second through
// the daemon's secure UDP listener (AEAD open, decode, replay guard,
// tracker): 1,000 senders sealed with the shared key, sent as fast as one
// socket can, rates limits off. It reports the rate at which the daemon
// processed what the kernel delivered.
func BenchmarkSecureUDPIngest(b *testing.B) {
	const senders = 1000
	const perSender = 100
	for b.Loop() {
		dir := newDir(b)
		keyHex := strings.Repeat("3c", 32)
		keyPath := filepath.Join(dir, "key")
		os.WriteFile(keyPath, []byte(keyHex), 0o600)
		var key secure.Key
		hex.Decode(key[:], []byte(keyHex))
		port := testsupport.FreeUDPPort(b)
		d := startFast(b, dir, true, "--threshold-ms", "60000", "--tracker-capacity", "4096",
			"--max-beat-rate", "0", "--global-beat-rate", "0", "--udp-port", port, "--key-file", keyPath,
			"--uds-rcvbuf-bytes", strconv.Itoa(64<<20))
		// Seal everything first, so that the send loop is only syscalls.
		wires := make([][]byte, 0, senders*perSender)
		sealers := make([]*secure.Sealer, senders)
		for i := range sealers {
			sealers[i], _ = secure.NewSharedSealer(key)
		}
		for n := 1; n <= perSender; n++ {
			for i, s := range sealers {
				f := vlp.Frame{Pid: uint32(100 + i), Nonce: uint64(n)}
				plain := f.Marshal()
				buf := make([]byte, s.Size())
				s.Seal(buf, &plain)
				s.Commit()
				wires = append(wires, buf)
			}
		}
		c, err := net.Dial("udp", "127.0.0.1:"+port)
		if err != nil {
			b.Fatal(err)
		}
		began := time.Now()
		for _, w := range wires {
			c.Write(w)
		}
		c.Close()
		var last float64
		lastChange := time.Now()
		for time.Since(lastChange) < 300*time.Millisecond {
			m := d.scrape()["varta_datagrams_received_total"]
			if m != last {
				last, lastChange = m, time.Now()
			}
			time.Sleep(10 * time.Millisecond)
		}
		m := d.scrape()
		b.ReportMetric(last/lastChange.Sub(began).Seconds(), "datagrams/s")
		b.ReportMetric(100*last/float64(len(wires)), "delivered-%")
		if m["varta_frame_decrypt_failures_total"] != 0 || m["varta_secure_replay_refused_total"] != 0 {
			b.Fatalf("decrypt failures %v, replays %v", m["varta_frame_decrypt_failures_total"], m["varta_secure_replay_refused_total"])
		}
	}
}

// minRecvEnv switches the test binary into the minimal receiver:
// "SOCKET|N" binds SOCKET, prints "ready", counts N datagrams with the
// same batched receive the daemon uses, prints "done" and exits.
const minRecvEnv = "VARTA_E2E_MINRECV"

func runMinimalReceiver(spec string) int {
	sock, ns, _ := strings.Cut(spec, "|")
	n, _ := strconv.Atoi(ns)
	u, err := listener.ListenUnix(listener.UnixOptions{Path: sock, Mode: 0o600, RcvBuf: 1 << 20})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer u.Close()
	fmt.Println("ready")
	batch := listener.NewBatch()
	for got := 0; got < n; {
		k, err := u.Read(batch)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		got += k
	}
	fmt.Println("done")
	io.Copy(io.Discard, os.Stdin) // stay alive until the parent read our CPU time
	return 0
}
