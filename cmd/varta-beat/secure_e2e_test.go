package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/varta-go/varta/pkg/agent/agenttest"
	"github.com/varta-go/varta/pkg/vlp"
	"github.com/varta-go/varta/pkg/vlp/secure"
)

// keyFile writes a key with varta-beat keygen and parses it back.
func keyFile(t *testing.T) (string, secure.Key) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "k")
	if res := varta(t, "keygen", path); res.code != 0 {
		t.Fatalf("keygen: %s", res.stderr)
	}
	k, err := secure.ParseKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, k
}

func TestSecureUDP(t *testing.T) {
	path, key := keyFile(t)
	tests := []struct {
		name string
		flag string
		cfg  secure.OpenerConfig
		size int
	}{
		{"shared key", "--key-file", secure.OpenerConfig{SharedKeys: []secure.Key{key}}, secure.SharedFrameSize},
		{"master key", "--master-key-file", secure.OpenerConfig{MasterKey: &key}, secure.MasterFrameSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := agenttest.ListenUDP("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			op, err := secure.NewOpener(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			res := varta(t, "run", "--udp", r.Addr(), tt.flag, path, "--count", "3", "--interval", "10ms", "--status", "critical")
			if res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			for i := 1; i <= 3; i++ {
				d, err := r.Recv(2 * time.Second)
				if err != nil {
					t.Fatal(err)
				}
				var plain [vlp.FrameSize]byte
				info, err := op.Open(&plain, d.Data)
				if err != nil || len(d.Data) != tt.size {
					t.Fatalf("open %d bytes: %v", len(d.Data), err)
				}
				var f vlp.Frame
				if err := vlp.Decode(plain[:], &f); err != nil {
					t.Fatal(err)
				}
				if f.Nonce != uint64(i) || info.IV.Counter != uint32(i-1) || f.Pid != uint32(res.pid) || f.Status != vlp.StatusCritical {
					t.Fatalf("frame %+v counter %d", f, info.IV.Counter)
				}
			}
		})
	}
}

func TestSecureKeyFileRules(t *testing.T) {
	path, _ := keyFile(t)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	res := varta(t, "once", "--udp", "127.0.0.1:9", "--key-file", path)
	if res.code != 1 || !strings.Contains(res.stderr, path) {
		t.Fatalf("exit %d, stderr %q: want failure naming the key file", res.code, res.stderr)
	}
}

func TestLoadSecureUDP(t *testing.T) {
	path, key := keyFile(t)
	r, err := agenttest.ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.SetReadBuffer(4 << 20); err != nil {
		t.Fatal(err)
	}
	op, err := secure.NewOpener(secure.OpenerConfig{MasterKey: &key})
	if err != nil {
		t.Fatal(err)
	}
	guard := secure.NewReplayGuard(secure.ReplayConfig{Capacity: 100})
	type tally struct{ ok, bad int }
	got := make(chan tally, 1)
	go func() {
		var n tally
		for {
			d, err := r.Recv(2 * time.Second)
			if err != nil {
				got <- n
				return
			}
			var plain [vlp.FrameSize]byte
			var f vlp.Frame
			info, err := op.Open(&plain, d.Data)
			if err == nil {
				err = vlp.Decode(plain[:], &f)
			}
			if err != nil || guard.Check(time.Now(), info.IV, &f) != secure.Accepted {
				n.bad++
				continue
			}
			n.ok++
		}
	}()
	res := varta(t, "load", "--udp", r.Addr(), "--master-key-file", path, "--agents", "50", "--rate", "20", "--duration", "500ms")
	if res.code != 0 {
		t.Fatalf("exit %d: %s\n%s", res.code, res.stderr, res.stdout)
	}
	n := <-got
	if n.bad != 0 || n.ok != 500 {
		t.Fatalf("%d frames opened and accepted, %d refused; want 500 and 0", n.ok, n.bad)
	}
	if !regexp.MustCompile(`(?m)^transport +secure udp \(master key\) `).MatchString(res.stdout) {
		t.Fatalf("report:\n%s", res.stdout)
	}
}
