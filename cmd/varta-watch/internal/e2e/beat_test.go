package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests drive the real varta-beat against the real varta-watch.

func beatCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(beatPath, args...)
	return cmd
}

func nonces(evs []event, pid string) []uint64 {
	var out []uint64
	for _, e := range filter(evs, "beat", pid) {
		n, _ := strconv.ParseUint(e.nonce, 10, 64)
		out = append(out, n)
	}
	return out
}

func TestVartaBeatRunNoncesInOrder(t *testing.T) {
	d := start(t, "--threshold-ms", "60000")
	cmd := beatCmd("run", "--socket", d.socket, "--interval", "20ms", "--count", "8", "--payload", "77", "--status", "degraded")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("run: %v: %s", err, out)
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	evs := d.waitEvents(10*time.Second, "8 beats", func(e []event) bool { return len(filter(e, "beat", pid)) == 8 })
	for i, e := range filter(evs, "beat", pid) {
		if e.nonce != strconv.Itoa(i+1) || e.status != "degraded" || e.payload != "77" {
			t.Fatalf("beat %d: %+v", i, e)
		}
	}
}

func TestVartaBeatSIGTERMSendsOneTerminalFrame(t *testing.T) {
	d := start(t, "--threshold-ms", "60000")
	cmd := beatCmd("run", "--socket", d.socket, "--interval", "50ms")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	d.waitEvents(10*time.Second, "first beats", func(e []event) bool { return len(filter(e, "beat", pid)) >= 2 })
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run after SIGTERM: %v", err)
	}
	evs := d.waitEvents(10*time.Second, "terminal frame", func(e []event) bool {
		b := filter(e, "beat", pid)
		return len(b) > 0 && b[len(b)-1].nonce == "18446744073709551615"
	})
	var terminals int
	for _, e := range filter(evs, "beat", pid) {
		if e.nonce == "18446744073709551615" {
			terminals++
			if e.status != "critical" || e.payload != "0" {
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
	d := start(t, "--threshold-ms", "60000", "--uds-rcvbuf-bytes", "4096", "--max-beat-rate", "0")
	cmd := beatCmd("run", "--socket", d.socket, "--interval", "2ms", "--reconnect-after", "0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	pid := strconv.Itoa(cmd.Process.Pid)
	d.waitEvents(10*time.Second, "first beats", func(e []event) bool { return len(filter(e, "beat", pid)) >= 3 })
	d.cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(1500 * time.Millisecond) // the small buffer fills; beats are dropped
	d.cmd.Process.Signal(syscall.SIGCONT)
	time.Sleep(500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if !strings.Contains(stderr.String(), "KernelQueueFull") {
		t.Fatalf("no drop was reported; the test did not fill the buffer:\n%s", stderr.String())
	}
	evs := d.waitEvents(10*time.Second, "terminal frame", func(e []event) bool {
		b := filter(e, "beat", pid)
		return len(b) > 0 && b[len(b)-1].nonce == "18446744073709551615"
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
	dir := newDir(t)
	sock := filepath.Join(dir, "varta.sock")
	// No observer: once reports the drop with exit 3.
	out, err := beatCmd("once", "--socket", sock).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 || !strings.Contains(string(out), "NoObserver") {
		t.Fatalf("once without observer: %v: %s", err, out)
	}
	d := startIn(t, dir, nil, "--threshold-ms", "60000")
	cmd := beatCmd("run", "--socket", sock, "--interval", "30ms", "--reconnect-after", "3")
	stderr := &lockedBuf{} // read while the command still runs
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	pid := strconv.Itoa(cmd.Process.Pid)
	d.waitEvents(10*time.Second, "beats", func(e []event) bool { return len(filter(e, "beat", pid)) >= 2 })
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("observer exit %d", code)
	}
	time.Sleep(500 * time.Millisecond) // beats are dropped while it is away
	os.Rename(d.events, d.events+".old")
	d2 := startIn(t, dir, nil, "--threshold-ms", "60000")
	d2.waitEvents(15*time.Second, "beats after the observer restarted", func(e []event) bool { return len(filter(e, "beat", pid)) >= 2 })
	if s := stderr.String(); !strings.Contains(s, "NoObserver") && !strings.Contains(s, "PeerGone") {
		t.Fatalf("drops while the observer was away were not reported:\n%s", s)
	}
}

func TestVartaBeatExec(t *testing.T) {
	d := start(t, "--threshold-ms", "400")
	// The child's exit code is propagated and a failing child gets a
	// terminal frame.
	cmd := beatCmd("exec", "--socket", d.socket, "--interval", "50ms", "--", "sh", "-c", "sleep 0.3; exit 7")
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
		t.Fatalf("exec exit: %v", err)
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	d.waitEvents(10*time.Second, "terminal frame", func(e []event) bool {
		b := filter(e, "beat", pid)
		return len(b) >= 2 && b[len(b)-1].nonce == "18446744073709551615"
	})

	// --require-output-within: the child goes quiet, the beats stop and the
	// observer surfaces a stall while the child still runs.
	quiet := beatCmd("exec", "--socket", d.socket, "--interval", "50ms", "--require-output-within", "200ms",
		"--", "sh", "-c", "echo hello; sleep 5")
	quiet.Stdout = &bytes.Buffer{}
	if err := quiet.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { quiet.Process.Kill(); quiet.Wait() }()
	qpid := strconv.Itoa(quiet.Process.Pid)
	evs := d.waitEvents(10*time.Second, "stall of the quiet job", func(e []event) bool { return len(filter(e, "stall", qpid)) == 1 })
	if quiet.ProcessState != nil {
		t.Fatal("the job ended before the stall")
	}
	if len(filter(evs, "beat", qpid)) == 0 {
		t.Fatal("no beats before the job went quiet")
	}
}

func TestVartaBeatLoad200Agents(t *testing.T) {
	d := start(t, "--threshold-ms", "60000")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, beatPath, "load", "--socket", d.socket, "--agents", "200", "--rate", "2", "--duration", "4s")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("load: %v: %s", err, out)
	}
	evs := d.waitEvents(20*time.Second, "200 distinct pids", func(e []event) bool {
		seen := map[string]bool{}
		for _, ev := range filter(e, "beat", "") {
			seen[ev.pid] = true
		}
		return len(seen) == 200
	})
	if m := filter(evs, "mismatch", ""); len(m) != 0 {
		t.Fatalf("load children were refused: %+v", m[0])
	}
	t.Logf("load report: %s", strings.TrimSpace(string(out)))
}

func TestVartaBeatKeygenKeyAcceptedByObserver(t *testing.T) {
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
	evs := d.waitEvents(10*time.Second, "3 secure beats", func(e []event) bool { return len(filter(e, "beat", pid)) == 3 })
	if got := nonces(evs, pid); got[0] != 1 || got[2] != 3 {
		t.Fatalf("nonces %v", got)
	}
}
