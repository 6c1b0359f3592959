package e2e

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
	"github.com/varta-go/varta/pkg/vlp"
)

var selfPid = strconv.Itoa(os.Getpid())

func TestBeatsAppearInEventsFile(t *testing.T) {
	t.Parallel()
	d := start(t, "--threshold-ms", "60000")
	s := d.dial()
	for i := uint64(1); i <= 5; i++ {
		s.frame(vlp.Frame{Status: vlp.Status(i % 3), Pid: uint32(os.Getpid()), Nonce: i, Payload: uint32(100 + i)})
	}
	evs := d.WaitEvents(10*time.Second, "5 beat lines", func(e []event) bool { return len(testsupport.Filter(e, "beat", selfPid)) == 5 })
	wantStatus := []string{"degraded", "critical", "ok", "degraded", "critical"}
	for i, e := range testsupport.Filter(evs, "beat", selfPid) {
		if e.Nonce != strconv.Itoa(i+1) || e.Status != wantStatus[i] || e.Payload != strconv.Itoa(101+i) {
			t.Errorf("beat %d: %+v", i, e)
		}
	}
}

func TestPidSpoofingIsAuthFailure(t *testing.T) {
	t.Parallel()
	d := start(t, "--threshold-ms", "60000")
	s := d.dial()
	other := uint32(os.Getpid() + 1)
	s.frame(vlp.Frame{Pid: other, Nonce: 1})
	s.beat(1)
	evs := d.WaitEvents(10*time.Second, "auth failure and own beat", func(e []event) bool {
		return len(testsupport.Filter(e, "mismatch", "")) == 1 && len(testsupport.Filter(e, "beat", selfPid)) == 1
	})
	m := testsupport.Filter(evs, "mismatch", "")[0]
	if m.Pid != strconv.Itoa(int(other)) || m.Payload != "auth_failure" || m.Nonce != "-" || m.Status != "-" {
		t.Fatalf("mismatch line %+v", m)
	}
	if len(testsupport.Filter(evs, "beat", strconv.Itoa(int(other)))) != 0 {
		t.Fatal("spoofed beat accepted")
	}
}

type vectorFile struct {
	Frames []struct {
		ID    string `json:"id"`
		Kind  string `json:"kind"`
		Error string `json:"expected_decode_error"`
		Wire  string `json:"wire_hex"`
	} `json:"frame_vectors"`
}

func TestDecodeErrorVectors(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../../../pkg/vlp/testdata/vlp-test-vectors.json")
	if err != nil {
		t.Fatalf("conformance vectors: %v", err)
	}
	var vf vectorFile
	if err := json.Unmarshal(raw, &vf); err != nil {
		t.Fatal(err)
	}
	d := start(t, "--threshold-ms", "60000")
	s := d.dial()
	var want []string
	for _, v := range vf.Frames {
		if v.Kind != "decode_error" {
			continue
		}
		s.raw(mustHex(t, v.Wire))
		want = append(want, v.Error)
	}
	if len(want) < 8 {
		t.Fatalf("only %d decode-error vectors", len(want))
	}
	evs := d.WaitEvents(10*time.Second, "decode lines", func(e []event) bool { return len(testsupport.Filter(e, "decode", "")) == len(want) })
	for i, e := range testsupport.Filter(evs, "decode", "") {
		if !strings.HasPrefix(e.Payload, want[i]) || e.Pid != "-" || e.Nonce != "-" || e.Status != "-" {
			t.Errorf("vector %d: line %+v, want error %s", i, e, want[i])
		}
	}
}

func TestWrongSizesAreDropped(t *testing.T) {
	t.Parallel()
	d := start(t, "--threshold-ms", "60000")
	s := d.dial()
	good := vlp.Frame{Pid: uint32(os.Getpid()), Nonce: 1}
	b := good.Marshal()
	s.raw(b[:31])
	s.raw(append(b[:], 0))
	s.raw(nil)
	s.beat(2)
	evs := d.WaitEvents(10*time.Second, "the valid beat", func(e []event) bool { return len(testsupport.Filter(e, "beat", selfPid)) == 1 })
	if len(evs) != 1 || evs[0].Nonce != "2" {
		t.Fatalf("wrong-size datagrams produced lines: %+v", evs)
	}
}

func TestStallOncePerSilenceAndResume(t *testing.T) {
	t.Parallel()
	const threshold = 300 * time.Millisecond
	d := start(t, "--threshold-ms", "300")
	s := d.dial()
	s.beat(1)
	s.beat(2)
	evs := d.WaitEvents(10*time.Second, "a stall", func(e []event) bool { return len(testsupport.Filter(e, "stall", selfPid)) == 1 })
	beats := testsupport.Filter(evs, "beat", selfPid)
	st := testsupport.Filter(evs, "stall", selfPid)[0]
	if st.NS < beats[len(beats)-1].NS+uint64(threshold) {
		t.Fatalf("stall at %d ns, last beat at %d ns: surfaced before the threshold", st.NS, beats[len(beats)-1].NS)
	}
	if st.Nonce != "2" || st.Status != "stall" || st.Payload != "-" {
		t.Fatalf("stall line %+v", st)
	}
	// Still silent: no second stall for this silence run.
	time.Sleep(3 * threshold)
	if n := len(testsupport.Filter(d.ReadEvents(), "stall", selfPid)); n != 1 {
		t.Fatalf("%d stall lines during one silence run", n)
	}
	// A beat resumes the agent; the next silence is a new run.
	s.beat(3)
	evs = d.WaitEvents(10*time.Second, "a second stall", func(e []event) bool { return len(testsupport.Filter(e, "stall", selfPid)) == 2 })
	if b := testsupport.Filter(evs, "beat", selfPid); b[len(b)-1].Nonce != "3" {
		t.Fatalf("resume beat missing: %+v", b)
	}
}

func TestDuplicateAndStaleNoncesDropped(t *testing.T) {
	t.Parallel()
	d := start(t, "--threshold-ms", "60000")
	s := d.dial()
	for _, n := range []uint64{5, 5, 3, 6} {
		s.beat(n)
	}
	evs := d.WaitEvents(10*time.Second, "beat 6", func(e []event) bool {
		b := testsupport.Filter(e, "beat", selfPid)
		return len(b) > 0 && b[len(b)-1].Nonce == "6"
	})
	var got []string
	for _, e := range testsupport.Filter(evs, "beat", selfPid) {
		got = append(got, e.Nonce)
	}
	if strings.Join(got, ",") != "5,6" {
		t.Fatalf("accepted nonces %v, want 5,6", got)
	}
}

func TestEvictionAtCapacity(t *testing.T) {
	t.Parallel()
	const threshold = 50 * time.Millisecond
	d := start(t, "--threshold-ms", "50", "--tracker-capacity", "1")
	s := d.dial()
	s.beat(1)
	evs := d.WaitEvents(10*time.Second, "stall of the first agent", func(e []event) bool { return len(testsupport.Filter(e, "stall", selfPid)) == 1 })
	first := testsupport.Filter(evs, "beat", selfPid)[0]
	// The new agent beats until its frames are admitted: the full table
	// refuses them until the first agent has been silent for more than
	// 10 × threshold and may be evicted.
	_, pid := d.agent(context.Background(), "self", "every:20ms", 0, nil)
	evs = d.WaitEvents(10*time.Second, "eviction", func(e []event) bool { return len(testsupport.Filter(e, "eviction", "")) == 1 })
	ev := testsupport.Filter(evs, "eviction", "")[0]
	if ev.Pid != selfPid || ev.Nonce != "-" || ev.Payload != "-" {
		t.Fatalf("eviction line %+v", ev)
	}
	if ev.NS <= first.NS+uint64(10*threshold) {
		t.Fatalf("evicted at %d ns, last beat at %d ns: silent for less than 10 × threshold", ev.NS, first.NS)
	}
	d.WaitEvents(10*time.Second, "new agent's beat", func(e []event) bool { return len(testsupport.Filter(e, "beat", strconv.Itoa(pid))) >= 1 })
}

func TestSecondObserverOnLiveSocketExits1(t *testing.T) {
	t.Parallel()
	d := start(t, "--threshold-ms", "1000")
	cmd := exec.Command(binPath, "--socket", d.Socket, "--threshold-ms", "1000")
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "another observer is running") {
		t.Fatalf("exit %d (%v): %s", cmd.ProcessState.ExitCode(), err, out)
	}
	// The first observer still owns its socket.
	d.dial().beat(1)
	d.WaitEvents(10*time.Second, "beat", func(e []event) bool { return len(testsupport.Filter(e, "beat", selfPid)) == 1 })
}

func TestConfigurationErrorsExit2(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	sock := filepath.Join(dir, "s.sock")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing threshold", []string{"--socket", sock}, "threshold-ms"},
		{"missing socket", []string{"--threshold-ms", "100"}, "socket"},
		{"threshold too small", []string{"--socket", sock, "--threshold-ms", "5"}, "--threshold-ms"},
		{"bad socket mode", []string{"--socket", sock, "--threshold-ms", "100", "--socket-mode", "999"}, "--socket-mode"},
		{"capacity zero", []string{"--socket", sock, "--threshold-ms", "100", "--tracker-capacity", "0"}, "--tracker-capacity"},
		{"capacity too large", []string{"--socket", sock, "--threshold-ms", "100", "--tracker-capacity", "1048577"}, "--tracker-capacity"},
		{"bad policy", []string{"--socket", sock, "--threshold-ms", "100", "--tracker-eviction-policy", "lru"}, "eviction policy"},
		{"bad clock", []string{"--socket", sock, "--threshold-ms", "100", "--clock-source", "realtime"}, "clock source"},
		{"bad log format", []string{"--socket", sock, "--threshold-ms", "100", "--log-format", "xml"}, "--log-format"},
		{"small export rotation", []string{"--socket", sock, "--threshold-ms", "100", "--export-file", filepath.Join(dir, "e"), "--export-file-max-bytes", "100"}, "--export-file-max-bytes"},
		{"removed recovery-cmd", []string{"--socket", sock, "--threshold-ms", "100", "--recovery-cmd", "x"}, "--recovery-exec"},
		{"removed key-env", []string{"--socket", sock, "--threshold-ms", "100", "--key-env", "K"}, "--key-file"},
		{"unknown flag", []string{"--socket", sock, "--threshold-ms", "100", "--no-such-flag"}, "no-such-flag"},
		{"grace too small", []string{"--socket", sock, "--threshold-ms", "100", "--shutdown-grace-ms", "10"}, "--shutdown-grace-ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(binPath, tc.args...)
			out, _ := cmd.CombinedOutput()
			if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
				t.Fatalf("exit %d, output:\n%s\nwant exit 2 naming %q", cmd.ProcessState.ExitCode(), out, tc.want)
			}
		})
	}
	if _, err := os.Stat(sock); err == nil {
		t.Fatal("a configuration error left a socket behind")
	}
}

func TestHelpExits0(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(binPath, "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--threshold-ms") {
		t.Fatalf("%v: %s", err, out)
	}
}

func TestSIGTERMExits0AndRemovesSocket(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			d := start(t, "--threshold-ms", "1000")
			d.dial().beat(1)
			d.WaitEvents(10*time.Second, "beat", func(e []event) bool { return len(e) == 1 })
			if code := d.Stop(sig); code != 0 {
				t.Fatalf("exit %d: %s", code, d.Stderr.String())
			}
			if _, err := os.Stat(d.Socket); !os.IsNotExist(err) {
				t.Fatalf("socket still there: %v", err)
			}
		})
	}
}

func TestShutdownAfterSecs(t *testing.T) {
	t.Parallel()
	d := start(t, "--threshold-ms", "1000", "--shutdown-after-secs", "1")
	select {
	case <-d.Done:
	case <-time.After(20 * time.Second):
		t.Fatal("did not exit after --shutdown-after-secs")
	}
	if code := d.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func TestSystemdNotify(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	nsock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: nsock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 64)
	go func() {
		buf := make([]byte, 512)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	d := startIn(t, dir, []string{"NOTIFY_SOCKET=" + nsock, "WATCHDOG_USEC=400000"}, "--threshold-ms", "1000")
	expect := func(want string) {
		t.Helper()
		deadline := time.After(15 * time.Second)
		for {
			select {
			case m := <-msgs:
				if strings.Contains(m, want) {
					return
				}
			case <-deadline:
				t.Fatalf("no %s on NOTIFY_SOCKET", want)
			}
		}
	}
	expect("READY=1")
	expect("WATCHDOG=1")
	if code := d.Stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
	expect("STOPPING=1")
}

// TestHeartbeatFileAdvances: the housekeeping tick rewrites the heartbeat
// file. With a drain interval the tick rides on the receivers' drains and
// falls back to a wake-up of its own when nothing arrives; both must keep
// it going. Where the tick is not left to the fallback (one interval late,
// so about one tick every 2 s here) it must come about once a second.
func TestHeartbeatFileAdvances(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		args    []string
		agent   bool
		minRate float64 // ticks per second of the observer's clock; 0 = not checked
	}{
		{"no drain interval", []string{"--threshold-ms", "1000"}, false, 0.75},
		{"drain interval, nothing arrives", []string{"--threshold-ms", "4000", "--drain-interval-ms", "1000"}, false, 0},
		{"drain interval, an agent beating", []string{"--threshold-ms", "4000", "--drain-interval-ms", "1000"}, true, 0.75},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := newDir(t)
			hb := filepath.Join(dir, "hb")
			d := startIn(t, dir, nil, append(tc.args, "--heartbeat-file", hb)...)
			if tc.agent {
				d.agent(t.Context(), "self", "every:100ms", 0, nil)
			}
			read := func() (uint64, uint64) {
				b, err := os.ReadFile(hb)
				if err != nil {
					return 0, 0
				}
				f := strings.Fields(string(b))
				if len(f) != 2 || !strings.HasSuffix(string(b), "\n") {
					t.Fatalf("heartbeat file %q", b)
				}
				a, _ := strconv.ParseUint(f[0], 10, 64)
				n, _ := strconv.ParseUint(f[1], 10, 64)
				return a, n
			}
			var t1, n1 uint64
			testsupport.Eventually(t, 10*time.Second, "first ticks", func() bool { t1, n1 = read(); return t1 > 0 })
			for range 2 {
				testsupport.Eventually(t, 10*time.Second, "ticks to advance", func() bool {
					t2, n2 := read()
					if t2 > t1 && n2 > n1 {
						t1, n1 = t2, n2
						return true
					}
					return false
				})
			}
			if fi, err := os.Stat(hb); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("heartbeat file mode %v %v", fi.Mode(), err)
			}
			if tc.minRate > 0 {
				time.Sleep(4 * time.Second) // a window to count ticks in
				t2, n2 := read()
				if rate := float64(t2-t1) / (float64(n2-n1) / 1e9); n2 <= n1 || rate < tc.minRate {
					t.Fatalf("%d ticks in %v of the observer's clock (%.2f/s), want at least %.2f/s", t2-t1, time.Duration(n2-n1), rate, tc.minRate)
				}
			}
		})
	}
}

func TestForeignUIDRefusedUnlessAllowed(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run an agent under another uid")
	}
	nobody := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	d := startWithMetrics(t, "--threshold-ms", "60000", "--socket-mode", "0666")
	_, pid := d.agent(context.Background(), "self", "1", 0, nobody)
	d.waitMetric("varta_frame_uid_refused_total", 1)
	d.dial().beat(1) // a control beat from our own uid, sent after the foreign one
	evs := d.WaitEvents(10*time.Second, "control beat", func(e []event) bool { return len(testsupport.Filter(e, "beat", selfPid)) == 1 })
	if len(testsupport.Filter(evs, "beat", strconv.Itoa(pid))) != 0 {
		t.Fatal("beat from uid 65534 accepted without --allow-uid")
	}

	d2 := start(t, "--threshold-ms", "60000", "--socket-mode", "0666", "--allow-uid", "65534")
	_, pid2 := d2.agent(context.Background(), "self", "1", 0, nobody)
	d2.WaitEvents(10*time.Second, "allowed foreign beat", func(e []event) bool { return len(testsupport.Filter(e, "beat", strconv.Itoa(pid2))) == 1 })
}
