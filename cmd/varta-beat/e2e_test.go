package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/pkg/agent"
	"github.com/varta-go/varta/pkg/agent/agenttest"
	"github.com/varta-go/varta/pkg/vlp"
)

// bin is the varta-beat binary built once for all tests.
var bin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("varta-beat: skipped under -short: these tests build and run the real binary (make test runs them)")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "vbeat-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "varta-beat")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build varta-beat: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func sockPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "vbt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "obs.sock")
}

func listenUnix(t *testing.T, path string) *agenttest.Receiver {
	t.Helper()
	r, err := agenttest.ListenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// fillReceiverQueue fills the receive queue of the Unix datagram socket
// at path. One sender can stop on its own send buffer long before the
// receiver's queue (net.unix.max_dgram_qlen, often raised on hosts that
// run the observer) is full, so senders are added until a fresh one
// cannot send its first beat: only then is the receiver's queue the limit.
// The senders stay open until the test ends, so the queue stays full.
func fillReceiverQueue(t *testing.T, path string) {
	t.Helper()
	for n := 0; n < 4096; n++ {
		filler, err := agent.DialUnix(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { filler.Close() })
		for i := 0; ; i++ {
			res := filler.Beat(vlp.StatusOk, 0)
			if res.Outcome != agent.Dropped {
				continue
			}
			if res.Reason != agent.KernelQueueFull {
				t.Fatalf("filler drop: %v", res)
			}
			if i == 0 {
				return // a fresh sender cannot send: the receiver is full
			}
			break
		}
	}
	t.Fatal("could not fill the receiver's queue with 4096 senders")
}

type run struct {
	code           int
	stdout, stderr string
	pid            int
	cpu            time.Duration // user + system time of the process
}

// varta runs the binary to completion (10 s at most).
func varta(t *testing.T, args ...string) run {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "VARTA_SOCKET=")
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(10*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	err := cmd.Wait()
	r := run{stdout: so.String(), stderr: se.String(), pid: cmd.Process.Pid}
	if ps := cmd.ProcessState; ps != nil {
		r.cpu = ps.UserTime() + ps.SystemTime()
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("run %v: %v", args, err)
	}
	return r
}

func recv(t *testing.T, r *agenttest.Receiver) (vlp.Frame, agenttest.Datagram) {
	t.Helper()
	f, d, err := r.RecvFrame(3 * time.Second)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return f, d
}

func expectNothing(t *testing.T, r *agenttest.Receiver, within time.Duration) {
	t.Helper()
	if d, err := r.Recv(within); !errors.Is(err, agenttest.ErrTimeout) {
		t.Fatalf("unexpected datagram %x (err %v)", d.Data, err)
	}
}

// checkCred asserts the kernel-reported sender is the frame's pid.
func checkCred(t *testing.T, f vlp.Frame, d agenttest.Datagram, wantPid int) {
	t.Helper()
	if d.HasCred && d.Pid != int32(f.Pid) {
		t.Fatalf("frame pid %d, kernel says %d", f.Pid, d.Pid)
	}
	if wantPid != 0 && f.Pid != uint32(wantPid) {
		t.Fatalf("frame pid %d, want %d", f.Pid, wantPid)
	}
}

func TestOnce(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(t *testing.T, path string) *agenttest.Receiver
		args     []string
		code     int
		stderrRe string
	}{
		{
			name:  "sent",
			setup: listenUnix,
			args:  []string{"--status", "degraded", "--payload", "77"},
			code:  0,
		},
		{
			name:     "no observer",
			setup:    func(*testing.T, string) *agenttest.Receiver { return nil },
			code:     3,
			stderrRe: `dropped: NoObserver: connect to observer socket ".*": no observer listening: no such file or directory`,
		},
		{
			name: "queue full",
			setup: func(t *testing.T, path string) *agenttest.Receiver {
				listenUnix(t, path) // kept open (and closed) by the test's cleanup
				fillReceiverQueue(t, path)
				return nil
			},
			code:     3,
			stderrRe: `dropped: KernelQueueFull \(resource temporarily unavailable\)`,
		},
		{
			name: "not a datagram socket",
			setup: func(t *testing.T, path string) *agenttest.Receiver {
				fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { syscall.Close(fd) })
				if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
					t.Fatal(err)
				}
				if err := syscall.Listen(fd, 1); err != nil {
					t.Fatal(err)
				}
				return nil
			},
			code:     1,
			stderrRe: `connect to observer socket ".*": protocol wrong type for socket`,
		},
		{
			name:     "stall is refused",
			setup:    listenUnix,
			args:     []string{"--status", "stall"},
			code:     2,
			stderrRe: `Stall is observer-only`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := sockPath(t)
			r := tt.setup(t, p)
			res := varta(t, append([]string{"once", "--socket", p}, tt.args...)...)
			if res.code != tt.code {
				t.Fatalf("exit %d, want %d; stderr: %s", res.code, tt.code, res.stderr)
			}
			if tt.stderrRe != "" && !regexp.MustCompile(tt.stderrRe).MatchString(res.stderr) {
				t.Fatalf("stderr %q does not match %q", res.stderr, tt.stderrRe)
			}
			if tt.code == 0 {
				f, d := recv(t, r)
				checkCred(t, f, d, res.pid)
				if f.Nonce != 1 || f.Status != vlp.StatusDegraded || f.Payload != 77 {
					t.Fatalf("frame %+v", f)
				}
			}
			if r != nil && tt.code != 0 {
				expectNothing(t, r, 50*time.Millisecond)
			}
		})
	}
}

func TestTerminalCommand(t *testing.T) {
	p := sockPath(t)
	r := listenUnix(t, p)
	res := varta(t, "terminal", "--socket", p)
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	f, d := recv(t, r)
	checkCred(t, f, d, res.pid)
	if !f.IsTerminal() || f.Payload != 0 {
		t.Fatalf("frame %+v", f)
	}
}

func TestRunCount(t *testing.T) {
	p := sockPath(t)
	r := listenUnix(t, p)
	res := varta(t, "run", "--socket", p, "--count", "5", "--interval", "10ms", "--payload", "9")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	var last uint64
	for i := 1; i <= 5; i++ {
		f, d := recv(t, r)
		checkCred(t, f, d, res.pid)
		if f.Nonce != uint64(i) || f.Payload != 9 || f.Status != vlp.StatusOk || f.Timestamp < last {
			t.Fatalf("beat %d: %+v", i, f)
		}
		last = f.Timestamp
	}
	expectNothing(t, r, 100*time.Millisecond) // no terminal frame after --count
}

func TestRunSignalSendsOneTerminalFrame(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			p := sockPath(t)
			r := listenUnix(t, p)
			cmd := exec.Command(bin, "run", "--socket", p, "--interval", "20ms")
			var se bytes.Buffer
			cmd.Stderr = &se
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			var last vlp.Frame
			for i := 1; i <= 3; i++ {
				f, d := recv(t, r)
				checkCred(t, f, d, cmd.Process.Pid)
				if f.Nonce != uint64(i) {
					t.Fatalf("nonce %d, want %d", f.Nonce, i)
				}
				last = f
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("run after %v: %v (want exit 0); stderr %s", sig, err, se.String())
			}
			var terms []vlp.Frame
			ds, err := r.Drain(100 * time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				f, err := d.Frame()
				if err != nil {
					t.Fatal(err)
				}
				if f.IsTerminal() {
					terms = append(terms, f)
				} else if f.Nonce <= last.Nonce {
					t.Fatalf("regular nonce %d after %d", f.Nonce, last.Nonce)
				}
			}
			if len(terms) != 1 {
				t.Fatalf("%d terminal frames, want exactly 1", len(terms))
			}
			tf := terms[0]
			if tf.Status != vlp.StatusCritical || tf.Nonce != 18446744073709551615 || tf.Payload != 0 || tf.Pid != uint32(cmd.Process.Pid) || tf.Timestamp < last.Timestamp {
				t.Fatalf("terminal frame %+v", tf)
			}
		})
	}
}

func TestExecExitCodes(t *testing.T) {
	tests := []struct {
		name     string
		argv     []string
		code     int
		terminal bool
	}{
		{"success", []string{"sh", "-c", "sleep 0.2"}, 0, false},
		{"exit 7", []string{"sh", "-c", "sleep 0.2; exit 7"}, 7, true},
		{"killed by SIGTERM", []string{"sh", "-c", "sleep 0.2; kill -TERM $$"}, 128 + 15, true},
		{"not found", []string{"/nonexistent/command"}, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := sockPath(t)
			r := listenUnix(t, p)
			// Read while the command runs, as an observer does.
			got := make(chan []agenttest.Datagram, 1)
			go func() {
				ds, _ := r.Drain(500 * time.Millisecond)
				got <- ds
			}()
			res := varta(t, append([]string{"exec", "--socket", p, "--interval", "20ms", "--"}, tt.argv...)...)
			if res.code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %s", res.code, tt.code, res.stderr)
			}
			ds := <-got
			regular, terminal := 0, 0
			for _, d := range ds {
				f, err := d.Frame()
				if err != nil {
					t.Fatal(err)
				}
				checkCred(t, f, d, res.pid)
				if f.IsTerminal() {
					terminal++
				} else {
					regular++
				}
			}
			wantTerm := 0
			if tt.terminal {
				wantTerm = 1
			}
			if terminal != wantTerm {
				t.Fatalf("%d terminal frames, want %d", terminal, wantTerm)
			}
			if tt.name != "not found" && regular < 2 {
				t.Fatalf("%d beats while a 200 ms child lived at 20 ms interval", regular)
			}
		})
	}
}

func TestExecPassesThroughAndStopsWhenQuiet(t *testing.T) {
	p := sockPath(t)
	r := listenUnix(t, p)
	var (
		mu    sync.Mutex
		times []time.Time
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			d, err := r.Recv(2 * time.Second)
			if err != nil {
				return
			}
			if f, err := d.Frame(); err == nil && !f.IsTerminal() {
				mu.Lock()
				times = append(times, time.Now())
				mu.Unlock()
			}
		}
	}()
	start := time.Now()
	res := varta(t, "exec", "--socket", p, "--interval", "20ms", "--require-output-within", "150ms", "--",
		"sh", "-c", "echo first; sleep 0.8; echo second >&2; sleep 0.1")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if res.stdout != "first\n" || !strings.Contains(res.stderr, "second\n") {
		t.Fatalf("output not passed through: stdout %q stderr %q", res.stdout, res.stderr)
	}
	if !strings.Contains(res.stderr, "beats paused") {
		t.Fatalf("stderr lacks the pause notice: %q", res.stderr)
	}
	<-done
	mu.Lock()
	defer mu.Unlock()
	// Beats in the first 150 ms, none for the quiet stretch, again after
	// "second".
	var gap time.Duration
	for i := 1; i < len(times); i++ {
		gap = max(gap, times[i].Sub(times[i-1]))
	}
	if len(times) < 4 || gap < 500*time.Millisecond {
		t.Fatalf("%d beats, longest gap %v: want beats to stop while the child was quiet", len(times), gap)
	}
	if last := times[len(times)-1].Sub(start); last < 700*time.Millisecond {
		t.Fatalf("last beat %v after start: want beats to resume after the child wrote again", last)
	}
}

func TestLoadUnixRealProcesses(t *testing.T) {
	p := sockPath(t)
	r := listenUnix(t, p)
	type seen struct {
		count int
	}
	pids := map[uint32]*seen{}
	errc := make(chan error, 1)
	go func() {
		for {
			d, err := r.Recv(3 * time.Second)
			if err != nil {
				if errors.Is(err, agenttest.ErrTimeout) {
					err = nil
				}
				errc <- err
				return
			}
			f, err := d.Frame()
			if err != nil {
				errc <- err
				return
			}
			if d.HasCred && d.Pid != int32(f.Pid) {
				errc <- fmt.Errorf("frame pid %d, kernel-attested pid %d", f.Pid, d.Pid)
				return
			}
			if pids[f.Pid] == nil {
				pids[f.Pid] = &seen{}
			}
			pids[f.Pid].count++
		}
	}()
	res := varta(t, "load", "--socket", p, "--agents", "20", "--rate", "10", "--duration", "1s")
	if res.code != 0 {
		t.Fatalf("exit %d: %s\n%s", res.code, res.stderr, res.stdout)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if len(pids) != 20 {
		t.Fatalf("%d distinct pids, want 20", len(pids))
	}
	total := 0
	for pid, s := range pids {
		if pid == uint32(res.pid) {
			t.Fatal("the parent beat itself")
		}
		total += s.count
	}
	for _, re := range []string{
		`(?m)^agents +20$`,
		fmt.Sprintf(`(?m)^sent +%d$`, total),
		`(?m)^child peak rss +avg [0-9.]+ MiB, max [0-9.]+ MiB, total [0-9.]+ MiB over 20 children$`,
	} {
		if !regexp.MustCompile(re).MatchString(res.stdout) {
			t.Fatalf("report does not match %s:\n%s", re, res.stdout)
		}
	}
	// Every child schedules 10 beats; each is either sent (and received)
	// or counted as dropped.
	m := regexp.MustCompile(`(?m)^dropped +(\d+) `).FindStringSubmatch(res.stdout)
	if m == nil || m[1] != fmt.Sprint(200-total) {
		t.Fatalf("received %d beats; the report's drops do not make up 200:\n%s", total, res.stdout)
	}
}

func TestLoadUDPSyntheticPids(t *testing.T) {
	r, err := agenttest.ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.SetReadBuffer(8 << 20); err != nil {
		t.Fatal(err)
	}
	pidMax := uint32(99999)
	if b, err := os.ReadFile("/proc/sys/kernel/pid_max"); err == nil {
		fmt.Sscan(string(b), &pidMax)
	}
	got := make(chan map[uint32]uint64, 1)
	go func() {
		last := map[uint32]uint64{}
		for {
			f, _, err := r.RecvFrame(2 * time.Second)
			if err != nil {
				got <- last
				return
			}
			if f.Pid < 2 || f.Pid >= pidMax || f.Nonce != last[f.Pid]+1 {
				last[0] = 1 // marks a bad frame
			}
			last[f.Pid] = f.Nonce
		}
	}()
	// The required scale: 10,000 agents at 1 Hz.
	res := varta(t, "load", "--udp", r.Addr(), "--agents", "10000", "--rate", "1", "--duration", "2s")
	if res.code != 0 {
		t.Fatalf("exit %d: %s\n%s", res.code, res.stderr, res.stdout)
	}
	last := <-got
	if last[0] != 0 {
		t.Fatal("a frame had a pid outside [2, pid_max) or a nonce out of sequence")
	}
	if len(last) != 10000 {
		t.Fatalf("%d distinct pids, want 10000", len(last))
	}
	var total uint64
	for _, n := range last {
		total += n
	}
	m := regexp.MustCompile(`(?m)^sent +(\d+)$`).FindStringSubmatch(res.stdout)
	if m == nil || m[1] != fmt.Sprint(total) || total != 20000 {
		t.Fatalf("received %d beats; report:\n%s", total, res.stdout)
	}
	// Sustaining the rate is a matter of capacity: on a shared machine the
	// wall-clock rate depends on the neighbours, the CPU time spent does
	// not. 20,000 beats in 2 s must cost well under half a core.
	if res.cpu > time.Second {
		t.Fatalf("load used %v of CPU for 2 s at 10,000 beats/s; want under 1 s", res.cpu)
	}
	t.Logf("CPU %v for 20,000 beats; %s", res.cpu, regexp.MustCompile(`(?m)^achieved rate.*$`).FindString(res.stdout))
}

func TestKeygen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "beat.key")
	res := varta(t, "keygen", path)
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", st.Mode().Perm())
	}
	key, _ := os.ReadFile(path)
	if !regexp.MustCompile(`^[0-9a-f]{64}\n$`).Match(key) {
		t.Fatalf("content %q", key)
	}
	res = varta(t, "keygen", path)
	if res.code != 1 || !strings.Contains(res.stderr, "refusing to overwrite") {
		t.Fatalf("second keygen: exit %d, stderr %q", res.code, res.stderr)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, key) {
		t.Fatal("existing key file was changed")
	}
	other := varta(t, "keygen", filepath.Join(t.TempDir(), "k2"))
	k2, _ := os.ReadFile(filepath.Join(filepath.Dir(path), "k2"))
	if other.code != 0 || bytes.Equal(k2, key) {
		t.Fatal("two keygen runs produced the same key")
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"socket and udp", []string{"once", "--socket", "/x", "--udp", "127.0.0.1:1"}, "mutually exclusive"},
		{"key without udp", []string{"once", "--key-file", "/x"}, "need --udp"},
		{"exec without command", []string{"exec", "--socket", "/x"}, "no command given"},
		{"bad status", []string{"once", "--status", "fine"}, `want ok, degraded or critical`},
		{"payload too big", []string{"once", "--payload", "4294967296"}, "does not fit in 32 bits"},
		{"keygen without path", []string{"keygen"}, "exactly one PATH"},
		{"load without agents", []string{"load", "--udp", "127.0.0.1:9", "--agents", "0"}, "--agents must be at least 1"},
		{"unknown command", []string{"nosuch"}, `unknown command "nosuch"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := varta(t, tt.args...)
			if res.code != 2 || !strings.Contains(res.stderr, tt.want) {
				t.Fatalf("exit %d (want 2), stderr %q (want %q)", res.code, res.stderr, tt.want)
			}
		})
	}
}

// TestRunSurvivesObserverRestart: the observer goes away and comes back at
// the same path; run reports the drops (rate-limited), reconnects and goes
// on with the next unsent nonce.
func TestRunSurvivesObserverRestart(t *testing.T) {
	p := sockPath(t)
	r, err := agenttest.ListenUnix(p)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--socket", p, "--interval", "20ms", "--reconnect-after", "2")
	var se bytes.Buffer
	cmd.Stderr = &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	f1, _ := recv(t, r)
	f2, _ := recv(t, r)
	if f1.Nonce != 1 || f2.Nonce != 2 {
		t.Fatalf("nonces %d %d", f1.Nonce, f2.Nonce)
	}
	r.Close()
	time.Sleep(300 * time.Millisecond)
	r2 := listenUnix(t, p)
	f, _ := recv(t, r2)
	// Nonces 3.. may have been queued to the old socket before it closed;
	// what matters is that the stream goes on without reusing a sent nonce.
	if f.Nonce <= f2.Nonce || f.Nonce > f2.Nonce+2 {
		t.Fatalf("first nonce after restart %d, last before %d", f.Nonce, f2.Nonce)
	}
	next, _ := recv(t, r2)
	if next.Nonce != f.Nonce+1 {
		t.Fatalf("nonce %d after %d", next.Nonce, f.Nonce)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
	out := se.String()
	if n := strings.Count(out, "dropped: "); n != 1 {
		t.Fatalf("%d drop lines in a 300 ms outage, want 1 (rate-limited):\n%s", n, out)
	}
	if !regexp.MustCompile(`beat nonce \d+ dropped: (NoObserver|PeerGone)`).MatchString(out) ||
		!regexp.MustCompile(`varta-beat: \d+ similar lines suppressed`).MatchString(out) {
		t.Fatalf("stderr:\n%s", out)
	}
}

// TestExecWithoutObserver: the command runs anyway and its exit code is
// passed on; varta-beat says why no beats went out.
func TestExecWithoutObserver(t *testing.T) {
	p := sockPath(t)
	marker := filepath.Join(t.TempDir(), "ran")
	res := varta(t, "exec", "--socket", p, "--interval", "20ms", "--", "sh", "-c", "touch "+marker+"; exit 5")
	if res.code != 5 {
		t.Fatalf("exit %d, want 5; stderr %s", res.code, res.stderr)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("the command did not run")
	}
	if !strings.Contains(res.stderr, "no observer listening") || !strings.Contains(res.stderr, "the command runs anyway") {
		t.Fatalf("stderr %q", res.stderr)
	}
}
