package e2e

import (
	"context"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
	"github.com/varta-go/varta/pkg/audit"
	"github.com/varta-go/varta/pkg/vlp"
	"github.com/varta-go/varta/pkg/vlp/secure"
)

const vectorKeyHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

// Conformance wire images (secure_frame_vectors): pid 2, nonce 1.
const (
	sharedVectorWire = "112233445566778800000000bcba1b202190b688a08e0a7ac909da44a2023cb7a421fd6428453fd12141c257b6fd638c55fddf5c621020de1327975a"
	masterVectorWire = "02000000112233445566778800000000efe8fd8c226106641e01fc8fe649f79475e19b4f2093e063987f1c663a5d2f0b73ba429fadc4c494e2723baff86af9cc"
)

func writeKey(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startUDP starts a daemon with metrics and a UDP listener on a free port.
func startUDP(t *testing.T, dir string, extra ...string) (*daemon, string) {
	t.Helper()
	port := testsupport.FreeUDPPort(t)
	args, token, tf := promArgs(t, dir)
	d := startIn(t, dir, nil, append(append([]string{"--udp-port", port}, args...), extra...)...)
	d.usePromAddr(token, tf)
	return d, "127.0.0.1:" + port
}

func udpSend(t *testing.T, addr string, b []byte) {
	t.Helper()
	c, err := net.Dial("udp", addr) // a new source port every call
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

func TestSecureVectorsAndReplay(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, flag, wire string }{
		{"shared", "--key-file", sharedVectorWire},
		{"master", "--master-key-file", masterVectorWire},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := newDir(t)
			key := writeKey(t, dir, "key", vectorKeyHex)
			d, addr := startUDP(t, dir, "--threshold-ms", "60000", tc.flag, key)
			wire := mustHex(t, tc.wire)
			c, err := net.Dial("udp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write(wire)
			evs := d.WaitEvents(10*time.Second, "beat for pid 2", func(e []event) bool { return len(testsupport.Filter(e, "beat", "2")) == 1 })
			if b := testsupport.Filter(evs, "beat", "2")[0]; b.Nonce != "1" || b.Status != "ok" {
				t.Fatalf("beat %+v", b)
			}
			c.Write(wire)          // the same datagram again
			udpSend(t, addr, wire) // and from another source port
			d.waitMetric("varta_secure_replay_refused_total", 2)
			if n := len(testsupport.Filter(d.ReadEvents(), "beat", "2")); n != 1 {
				t.Fatalf("%d beats for pid 2 after replays", n)
			}
		})
	}
}

func TestSecureRejections(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	master := writeKey(t, dir, "master", vectorKeyHex)
	d, addr := startUDP(t, dir, "--threshold-ms", "60000", "--master-key-file", master)

	mw := mustHex(t, masterVectorWire)
	tag := append([]byte(nil), mw...)
	tag[len(tag)-1] ^= 1
	udpSend(t, addr, tag) // tampered tag
	pidAltered := append([]byte(nil), mw...)
	pidAltered[0] = 3
	udpSend(t, addr, pidAltered) // cleartext pid altered
	var other secure.Key
	other[0] = 0xee
	s, _ := secure.NewMasterSealer(other, 2)
	buf := make([]byte, s.Size())
	f := vlp.Frame{Pid: 2, Nonce: 5}
	plain := f.Marshal()
	udpSend(t, addr, buf[:s.Seal(buf, &plain)]) // wrong master key
	// Sealed for pid 3 (right key, pid 3 in the clear) but pid 2 inside.
	var mk secure.Key
	hex.Decode(mk[:], []byte(vectorKeyHex))
	s3, _ := secure.NewMasterSealer(mk, 3)
	udpSend(t, addr, buf[:s3.Seal(buf, &plain)])
	for _, n := range []int{59, 61, 63, 65} {
		udpSend(t, addr, make([]byte, n))
	}
	d.waitMetric("varta_frame_decrypt_failures_total", 4)
	d.waitMetric("varta_truncated_datagrams_total", 4)
	if evs := d.ReadEvents(); len(evs) != 0 {
		t.Fatalf("rejected secure frames produced events: %+v", evs)
	}
	if d.metric(`varta_decode_errors_total{kind="bad_crc"}`) != 0 {
		t.Fatal("an AEAD failure was counted as a CRC error")
	}
}

func TestSecureAcceptedKeyRotation(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	primary := writeKey(t, dir, "primary", strings.Repeat("11", 32))
	old := strings.Repeat("22", 32)
	accepted := writeKey(t, dir, "accepted", "# previous key, until every agent has the new one\n\n"+old)
	d, addr := startUDP(t, dir, "--threshold-ms", "60000", "--key-file", primary, "--accepted-key-file", accepted)
	var k secure.Key
	hex.Decode(k[:], []byte(old))
	s, _ := secure.NewSharedSealer(k)
	buf := make([]byte, s.Size())
	f := vlp.Frame{Pid: 4321, Nonce: 1}
	plain := f.Marshal()
	udpSend(t, addr, buf[:s.Seal(buf, &plain)])
	d.WaitEvents(10*time.Second, "beat sealed with the accepted key", func(e []event) bool { return len(testsupport.Filter(e, "beat", "4321")) == 1 })
	if v := d.metric("varta_secure_aead_attempts_total"); v != 2 {
		t.Fatalf("AEAD attempts %v, want 2 (every key tried)", v)
	}
}

func TestUDPConfigurationErrors(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	key := writeKey(t, dir, "key", vectorKeyHex)
	sock := filepath.Join(dir, "s.sock")
	base := []string{"--socket", sock, "--threshold-ms", "100", "--udp-port", "9"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"plain without acceptance", nil, "--i-accept-plaintext-udp"},
		{"plain with recovery", []string{"--i-accept-plaintext-udp", "--recovery-exec", "/bin/true"}, "--plaintext-udp-i-accept-recovery-on-unauthenticated-transport"},
		{"secure with recovery", []string{"--key-file", key, "--recovery-exec", "/bin/true"}, "--secure-udp-i-accept-recovery-on-unauthenticated-transport"},
		{"secure non-loopback", []string{"--key-file", key, "--udp-bind-addr", "0.0.0.0"}, "--i-accept-secure-udp-non-loopback"},
		{"accepted without primary", []string{"--accepted-key-file", key}, "--key-file"},
		{"key without port", []string{"--udp-port", "0", "--key-file", key}, "--udp-port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(binPath, append(append([]string{}, base...), tc.args...)...)
			out, _ := cmd.CombinedOutput()
			if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
				t.Fatalf("exit %d: %s", cmd.ProcessState.ExitCode(), out)
			}
		})
	}
	// Key files that break the rules stop the daemon at start (exit 1).
	loose := writeKey(t, dir, "loose", vectorKeyHex)
	os.Chmod(loose, 0o644)
	two := writeKey(t, dir, "two", vectorKeyHex+"\n"+vectorKeyHex)
	short := writeKey(t, dir, "short", vectorKeyHex[:60])
	for _, tc := range []struct{ file, want string }{
		{loose, "group/other"}, {two, "2 keys"}, {short, "60 characters"},
	} {
		cmd := exec.Command(binPath, "--socket", sock, "--threshold-ms", "100", "--udp-port", testsupport.FreeUDPPort(t), "--key-file", tc.file)
		out, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), tc.want) || !strings.Contains(string(out), tc.file) {
			t.Errorf("key file %s: exit %d: %s", tc.file, cmd.ProcessState.ExitCode(), out)
		}
	}
}

func TestOriginUpgradeAndConflict(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	d, addr := startUDP(t, dir, "--threshold-ms", "60000", "--i-accept-plaintext-udp")
	me := uint32(os.Getpid())
	udpFrame := func(n uint64) []byte { f := vlp.Frame{Pid: me, Nonce: n}; b := f.Marshal(); return b[:] }
	udpSend(t, addr, udpFrame(10))
	d.WaitEvents(10*time.Second, "UDP beat", func(e []event) bool { return len(testsupport.Filter(e, "beat", selfPid)) == 1 })
	d.dial().beat(1) // kernel-attested: upgrades the slot despite the lower nonce
	d.WaitEvents(10*time.Second, "upgrade", func(e []event) bool { return len(testsupport.Filter(e, "beat", selfPid)) == 2 })
	udpSend(t, addr, udpFrame(11)) // weaker origin for a pinned pid
	evs := d.WaitEvents(10*time.Second, "origin conflict", func(e []event) bool { return len(testsupport.Filter(e, "mismatch", selfPid)) == 1 })
	if m := testsupport.Filter(evs, "mismatch", selfPid)[0]; m.Payload != "origin_conflict" {
		t.Fatalf("%+v", m)
	}
	d.waitMetric("varta_origin_conflict_total", 1)
}

// TestUDPStallRecoveredWithAcceptance: with the listener's acceptance flag
// a UDP-origin stall runs recovery (without it the daemon refuses to start:
// TestUDPConfigurationErrors).
func TestUDPStallRecoveredWithAcceptance(t *testing.T) {
	t.Parallel()
	r := newRecoveryEnv(t)
	port := testsupport.FreeUDPPort(t)
	startIn(t, r.dir, nil, "--threshold-ms", "200", "--udp-port", port, "--i-accept-plaintext-udp",
		"--plaintext-udp-i-accept-recovery-on-unauthenticated-transport",
		"--recovery-exec", r.exec(0, 0, "{pid}"), "--recovery-audit-file", r.audit)
	// A live process of ours (so the pid is plausible) that never beats
	// over the Unix socket: its beat comes over UDP only.
	cmd := exec.CommandContext(context.Background(), "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	f := vlp.Frame{Pid: uint32(cmd.Process.Pid), Nonce: 1}
	b := f.Marshal()
	udpSend(t, "127.0.0.1:"+port, b[:])
	recs := waitAudit(t, r.audit, "spawn for the UDP agent", func(rs []audit.Record) bool { return len(ofKind(rs, audit.KindSpawn)) == 1 })
	if sp := ofKind(recs, audit.KindSpawn)[0].Spawn; sp.AgentPid != uint32(cmd.Process.Pid) {
		t.Fatalf("spawn %+v", sp)
	}
}

func TestVartaBeatSecureInterop(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	key := writeKey(t, dir, "key", strings.Repeat("ab", 32))
	d, addr := startUDP(t, dir, "--threshold-ms", "60000", "--key-file", key)
	cmd := exec.Command(beatPath, "once", "--udp", addr, "--key-file", key)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("varta-beat once: %v: %s", err, out)
	}
	evs := d.WaitEvents(10*time.Second, "varta-beat's beat", func(e []event) bool { return len(testsupport.Filter(e, "beat", "")) == 1 })
	if evs[0].Pid != strconv.Itoa(cmd.Process.Pid) || evs[0].Nonce != "1" {
		t.Fatalf("beat %+v, varta-beat pid %d", evs[0], cmd.Process.Pid)
	}
}
