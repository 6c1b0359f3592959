package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
)

// These tests drive the real varta-beat against the real varta-watch.

func beatCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(beatPath, args...)
	return cmd
}

func nonces(evs []event, pid string) []uint64 {
	var out []uint64
	for _, e := range testsupport.Filter(evs, "beat", pid) {
		n, _ := strconv.ParseUint(e.Nonce, 10, 64)
		out = append(out, n)
	}
	return out
}

func TestVartaBeatRunNoncesInOrder(t *testing.T) {
	t.Parallel()
	d := start(t, "--threshold-ms", "60000")
	cmd := beatCmd("run", "--socket", d.Socket, "--interval", "20ms", "--count", "8", "--payload", "77", "--status", "degraded")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("run: %v: %s", err, out)
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	evs := d.WaitEvents(10*time.Second, "8 beats", func(e []event) bool { return len(testsupport.Filter(e, "beat", pid)) == 8 })
	for i, e := range testsupport.Filter(evs, "beat", pid) {
		if e.Nonce != strconv.Itoa(i+1) || e.Status != "degraded" || e.Payload != "77" {
			t.Fatalf("beat %d: %+v", i, e)
		}
	}
}

func TestVartaBeatSIGTERMSendsOneTerminalFrame(t *testing.T) {
	t.Parallel()
	d := start(t, "--threshold-ms", "60000")
	cmd := beatCmd("run", "--socket", d.Socket, "--interval", "50ms")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	d.WaitEvents(10*time.Second, "first beats", func(e []event) bool { return len(testsupport.Filter(e, "beat", pid)) >= 2 })
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run after SIGTERM: %v", err)
	}
	evs := d.WaitEvents(10*time.Second, "terminal frame", func(e []event) bool {
		b := testsupport.Filter(e, "beat", pid)
		return len(b) > 0 && b[len(b)-1].Nonce == "18446744073709551615"
	})
	var terminals int
	for _, e := range testsupport.Filter(evs, "beat", pid) {
		if e.Nonce == "18446744073709551615" {
			terminals++
			if e.Status != "critical" || e.Payload != "0" {
				t.Fatalf("terminal frame %+v", e)
			}
		}
	}
	if terminals != 1 {
		t.Fatalf("%d terminal frames", terminals)
	}
}

// TestVartaBeatResendsDroppedBeat pauses the observer so its socket
// buffer fills; varta-beat's dropped beats must be re-sent with the same
// nonce, so the observer sees a gap-free nonce sequence once it resumes.
func TestVartaBeatResendsDroppedBeat(t *testing.T) {
	t.Parallel()
	d := start(t, "--threshold-ms", "60000", "--uds-rcvbuf-bytes", "4096", "--max-beat-rate", "0")
	cmd := beatCmd("run", "--socket", d.Socket, "--interval", "2ms", "--reconnect-after", "0")
	stderr := &testsupport.Buffer{} // read while the command still runs
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	pid := strconv.Itoa(cmd.Process.Pid)
	d.WaitEvents(10*time.Second, "first beats", func(e []event) bool { return len(testsupport.Filter(e, "beat", pid)) >= 3 })
	d.Cmd.Process.Signal(syscall.SIGSTOP)
	// The small buffer fills and varta-beat reports the first dropped
	// beat ("beat nonce N dropped: KernelQueueFull").
	dropped := regexp.MustCompile(`nonce (\d+) dropped: KernelQueueFull`)
	var first uint64
	testsupport.Eventually(t, 10*time.Second, "a beat dropped on the full queue", func() bool {
		m := dropped.FindStringSubmatch(stderr.String())
		if m != nil {
			first, _ = strconv.ParseUint(m[1], 10, 64)
		}
		return m != nil
	})
	d.Cmd.Process.Signal(syscall.SIGCONT)
	// Once the observer has accepted a beat after the dropped one, the
	// dropped nonce was re-sent (or the check below fails).
	d.WaitEvents(10*time.Second, "beats after the dropped one", func(e []event) bool {
		ns := nonces(e, pid)
		return len(ns) > 0 && ns[len(ns)-1] > first
	})
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	evs := d.WaitEvents(10*time.Second, "terminal frame", func(e []event) bool {
		b := testsupport.Filter(e, "beat", pid)
		return len(b) > 0 && b[len(b)-1].Nonce == "18446744073709551615"
	})
	ns := nonces(evs, pid)
	ns = ns[:len(ns)-1] // the terminal frame
	for i, n := range ns {
		if n != uint64(i+1) {
			t.Fatalf("nonce %d at position %d: a dropped beat was not re-sent with its nonce (%v...)", n, i, ns[:min(len(ns), i+3)])
		}
	}
}

func TestVartaBeatObserverAbsentAndRestart(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	sock := filepath.Join(dir, "varta.sock")
	// No observer: once reports the drop with exit 3.
	out, err := beatCmd("once", "--socket", sock).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 || !strings.Contains(string(out), "NoObserver") {
		t.Fatalf("once without observer: %v: %s", err, out)
	}
	d := startIn(t, dir, nil, "--threshold-ms", "60000")
	cmd := beatCmd("run", "--socket", sock, "--interval", "30ms", "--reconnect-after", "3")
	stderr := &testsupport.Buffer{} // read while the command still runs
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	pid := strconv.Itoa(cmd.Process.Pid)
	d.WaitEvents(10*time.Second, "beats", func(e []event) bool { return len(testsupport.Filter(e, "beat", pid)) >= 2 })
	if code := d.Stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("observer exit %d", code)
	}
	// Beats are dropped, and reported, while it is away.
	testsupport.Eventually(t, 10*time.Second, "a drop reported while the observer is away", func() bool {
		s := stderr.String()
		return strings.Contains(s, "NoObserver") || strings.Contains(s, "PeerGone")
	})
	os.Rename(d.EventsFile, d.EventsFile+".old")
	d2 := startIn(t, dir, nil, "--threshold-ms", "60000")
	d2.WaitEvents(15*time.Second, "beats after the observer restarted", func(e []event) bool { return len(testsupport.Filter(e, "beat", pid)) >= 2 })
}

func TestVartaBeatExec(t *testing.T) {
	t.Parallel()
	d := start(t, "--threshold-ms", "400")
	// The child's exit code is propagated and a failing child gets a
	// terminal frame.
	cmd := beatCmd("exec", "--socket", d.Socket, "--interval", "50ms", "--", "sh", "-c", "sleep 0.3; exit 7")
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
		t.Fatalf("exec exit: %v", err)
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	d.WaitEvents(10*time.Second, "terminal frame", func(e []event) bool {
		b := testsupport.Filter(e, "beat", pid)
		return len(b) >= 2 && b[len(b)-1].Nonce == "18446744073709551615"
	})

	// --require-output-within: the child goes quiet, the beats stop and the
	// observer surfaces a stall while the child still runs.
	quiet := beatCmd("exec", "--socket", d.Socket, "--interval", "50ms", "--require-output-within", "200ms",
		"--", "sh", "-c", "echo hello; sleep 5")
	quiet.Stdout = &bytes.Buffer{}
	if err := quiet.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { quiet.Process.Kill(); quiet.Wait() }()
	qpid := strconv.Itoa(quiet.Process.Pid)
	evs := d.WaitEvents(10*time.Second, "stall of the quiet job", func(e []event) bool { return len(testsupport.Filter(e, "stall", qpid)) == 1 })
	if quiet.ProcessState != nil {
		t.Fatal("the job ended before the stall")
	}
	if len(testsupport.Filter(evs, "beat", qpid)) == 0 {
		t.Fatal("no beats before the job went quiet")
	}
}

func TestVartaBeatLoad200Agents(t *testing.T) {
	t.Parallel()
	d := start(t, "--threshold-ms", "60000")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, beatPath, "load", "--socket", d.Socket, "--agents", "200", "--rate", "2", "--duration", "4s")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("load: %v: %s", err, out)
	}
	evs := d.WaitEvents(20*time.Second, "200 distinct pids", func(e []event) bool {
		seen := map[string]bool{}
		for _, ev := range testsupport.Filter(e, "beat", "") {
			seen[ev.Pid] = true
		}
		return len(seen) == 200
	})
	if m := testsupport.Filter(evs, "mismatch", ""); len(m) != 0 {
		t.Fatalf("load children were refused: %+v", m[0])
	}
	t.Logf("load report: %s", strings.TrimSpace(string(out)))
}

func TestVartaBeatKeygenKeyAcceptedByObserver(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	key := filepath.Join(dir, "generated.key")
	if out, err := beatCmd("keygen", key).CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v: %s", err, out)
	}
	fi, err := os.Stat(key)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v %v", fi.Mode(), err)
	}
	if out, err := beatCmd("keygen", key).CombinedOutput(); err == nil {
		t.Fatalf("keygen overwrote an existing key: %s", out)
	}
	d, addr := startUDP(t, dir, "--threshold-ms", "60000", "--key-file", key)
	cmd := beatCmd("run", "--udp", addr, "--key-file", key, "--count", "3", "--interval", "20ms")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("secure run: %v: %s", err, out)
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	evs := d.WaitEvents(10*time.Second, "3 secure beats", func(e []event) bool { return len(testsupport.Filter(e, "beat", pid)) == 3 })
	if got := nonces(evs, pid); got[0] != 1 || got[2] != 3 {
		t.Fatalf("nonces %v", got)
	}
}
