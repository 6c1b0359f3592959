package faults

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
	"github.com/varta-go/varta/pkg/vlp"
	"github.com/varta-go/varta/pkg/vlp/secure"
)

// TestReplayAfterRestart: secure frames of 5 agents are captured while
// the daemon accepts them, the daemon is restarted (SIGTERM, or SIGKILL
// between two saves), and every captured frame is replayed at the new
// daemon. Batch A was covered by a save, batch B was sent after the last
// save: after a SIGTERM both are refused; after a SIGKILL batch A is
// refused and batch B is the documented window (accepted once). Without
// --state-dir everything is accepted (the row of issue 13 as it was).
func TestReplayAfterRestart(t *testing.T) {
	const senders, perBatch = 5, 10
	for _, tc := range []struct {
		name         string
		state        bool
		sig          syscall.Signal
		wantA, wantB int // frames of each batch accepted after the restart
	}{
		{"state dir, SIGTERM", true, syscall.SIGTERM, 0, 0},
		{"state dir, SIGKILL after a save", true, syscall.SIGKILL, 0, senders * perBatch},
		{"no state dir", false, syscall.SIGTERM, senders * perBatch, senders * perBatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := testsupport.ShortDir(t)
			var kb, tb [32]byte
			rand.Read(kb[:])
			rand.Read(tb[:])
			keyPath, tokPath := filepath.Join(dir, "key"), filepath.Join(dir, "prom.token")
			os.WriteFile(keyPath, []byte(hex.EncodeToString(kb[:])+"\n"), 0o600)
			os.WriteFile(tokPath, []byte(hex.EncodeToString(tb[:])+"\n"), 0o600)
			key, err := secure.ParseKeyFile(keyPath)
			if err != nil {
				t.Fatal(err)
			}
			port := testsupport.FreeUDPPort(t)
			args := []string{"--threshold-ms", "600000", "--udp-port", port, "--key-file", keyPath,
				"--prom-addr", "127.0.0.1:0", "--prom-token-file", tokPath}
			if tc.state {
				// Batch B and the SIGKILL follow a save within a few
				// milliseconds, well inside the 1.5 s to the next one.
				args = append(args, "--state-dir", filepath.Join(dir, "state"), "--state-save-interval-ms", "1500")
			}
			w := startWatch(t, dir, args...)
			mc := testsupport.NewMetricsClient(w.PromAddr(), hex.EncodeToString(tb[:]))
			metric := func(name string) float64 {
				_, m, _ := mc.Scrape()
				return m[name]
			}
			conn, err := net.Dial("udp", "127.0.0.1:"+port)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			sealers := make([]*secure.Sealer, senders)
			nonces := make([]uint64, senders)
			for i := range sealers {
				if sealers[i], err = secure.NewSharedSealer(key); err != nil {
					t.Fatal(err)
				}
			}
			batch := func() [][]byte {
				var out [][]byte
				for range perBatch {
					for i, s := range sealers {
						nonces[i]++
						f := vlp.Frame{Status: vlp.StatusOk, Pid: uint32(5000 + i), Timestamp: nonces[i], Nonce: nonces[i]}
						plain := f.Marshal()
						b := make([]byte, s.Size())
						s.Seal(b, &plain)
						s.Commit()
						conn.Write(b)
						out = append(out, b)
						time.Sleep(time.Millisecond)
					}
				}
				return out
			}
			a := batch()
			testsupport.Eventually(t, 10*time.Second, "batch A accepted", func() bool { return metric("varta_datagrams_received_total") >= float64(len(a)) })
			if tc.state {
				// The next complete save (agents, then replay file: an even
				// count) after batch A was received.
				base := metric("varta_state_saves_total")
				testsupport.Eventually(t, 10*time.Second, "a save after batch A", func() bool {
					n := metric("varta_state_saves_total")
					return n >= base+2 && int(n)%2 == 0
				})
			}
			b := batch()
			testsupport.Eventually(t, 10*time.Second, "batch B received", func() bool {
				return metric("varta_datagrams_received_total") >= float64(len(a)+len(b))
			})
			w.Stop(tc.sig)
			os.Remove(w.Socket)

			w2 := startWatch(t, dir, args...)
			mc = testsupport.NewMetricsClient(w2.PromAddr(), hex.EncodeToString(tb[:]))
			conn2, err := net.Dial("udp", "127.0.0.1:"+port)
			if err != nil {
				t.Fatal(err)
			}
			defer conn2.Close()
			replay := func(frames [][]byte) (accepted int) {
				before := metric("varta_secure_replay_refused_total")
				seen := metric("varta_datagrams_received_total")
				for _, f := range frames {
					conn2.Write(f)
					time.Sleep(time.Millisecond)
				}
				testsupport.Eventually(t, 10*time.Second, "replays received", func() bool {
					return metric("varta_datagrams_received_total") >= seen+float64(len(frames))
				})
				return len(frames) - int(metric("varta_secure_replay_refused_total")-before)
			}
			gotA, gotB := replay(a), replay(b)
			restored := metric("varta_state_replay_senders_restored_total")
			t.Logf("%s: batch A (saved) %d/%d replays accepted, batch B (after the last save) %d/%d accepted; senders restored %v",
				tc.name, gotA, len(a), gotB, len(b), restored)
			if gotA != tc.wantA || gotB != tc.wantB {
				t.Fatalf("accepted %d of batch A and %d of batch B, want %d and %d", gotA, gotB, tc.wantA, tc.wantB)
			}
		})
	}
}
