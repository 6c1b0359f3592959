package agent_test

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/pkg/agent"
	"github.com/varta-go/varta/pkg/agent/agenttest"
	"github.com/varta-go/varta/pkg/vlp"
)

// transport is a receiver plus the Options that reach it.
type transport struct {
	name string
	open func(t testing.TB) (*agenttest.Receiver, agent.Options)
	// recv reads and decodes one frame from the receiver.
	recv func(t testing.TB, r *agenttest.Receiver) vlp.Frame
}

func plainRecv(t testing.TB, r *agenttest.Receiver) vlp.Frame {
	t.Helper()
	f, _ := recvFrame(t, r)
	return f
}

func benchTransports(testing.TB) []transport { return transports() }

func transports() []transport {
	ts := []transport{
		{
			name: "unix",
			open: func(t testing.TB) (*agenttest.Receiver, agent.Options) {
				p := sockPath(t)
				return listenUnix(t, p), agent.Options{SocketPath: p}
			},
			recv: plainRecv,
		},
		{
			name: "udp",
			open: func(t testing.TB) (*agenttest.Receiver, agent.Options) {
				r := listenUDP(t)
				return r, agent.Options{UDPAddr: r.Addr()}
			},
			recv: plainRecv,
		},
	}
	return append(ts, secureTransports()...)
}

func TestNoncesInOrder(t *testing.T) {
	for _, tr := range transports() {
		t.Run(tr.name, func(t *testing.T) {
			r, o := tr.open(t)
			a := connect(t, o)
			const n = 8 // below the default Unix queue length of 10
			for i := 1; i <= n; i++ {
				res := a.Beat(vlp.StatusDegraded, uint32(100+i))
				if !res.Sent() || res.Nonce != uint64(i) {
					t.Fatalf("beat %d: %v", i, res)
				}
			}
			var lastTs uint64
			for i := 1; i <= n; i++ {
				f := tr.recv(t, r)
				if f.Nonce != uint64(i) {
					t.Fatalf("frame %d: nonce %d", i, f.Nonce)
				}
				if f.Pid != uint32(os.Getpid()) {
					t.Fatalf("frame %d: pid %d, want %d", i, f.Pid, os.Getpid())
				}
				if f.Status != vlp.StatusDegraded || f.Payload != uint32(100+i) {
					t.Fatalf("frame %d: status %v payload %d", i, f.Status, f.Payload)
				}
				if f.Timestamp < lastTs {
					t.Fatalf("frame %d: timestamp %d went back from %d", i, f.Timestamp, lastTs)
				}
				lastTs = f.Timestamp
			}
			if s := a.Stats(); s.Sent != n || s.TotalDropped() != 0 {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

func TestUnixCredentialsMatchFramePid(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("per-datagram credentials are Linux-only")
	}
	p := sockPath(t)
	r := listenUnix(t, p)
	a := connect(t, agent.Options{SocketPath: p})
	if res := a.Beat(vlp.StatusOk, 0); !res.Sent() {
		t.Fatal(res)
	}
	f, d := recvFrame(t, r)
	if !d.HasCred || d.Pid != int32(f.Pid) || d.Uid != uint32(os.Getuid()) {
		t.Fatalf("cred %+v, frame pid %d", d, f.Pid)
	}
}

// TestDroppedBeatIsResentWithSameNonce fills the receiver's queue by not
// reading, checks the drop, frees space and checks that the next beat carries
// the dropped nonce and that the receiver sees 1..N without gaps.
func TestDroppedBeatIsResentWithSameNonce(t *testing.T) {
	p := sockPath(t)
	r := listenUnix(t, p)
	if err := r.SetReadBuffer(1024); err != nil {
		t.Fatal(err)
	}
	a := connect(t, agent.Options{SocketPath: p})
	var drop agent.Result
	for i := 0; i < 10000; i++ {
		res := a.Beat(vlp.StatusOk, 0)
		if res.Outcome == agent.Dropped {
			drop = res
			break
		}
		if !res.Sent() {
			t.Fatalf("beat %d: %v", i, res)
		}
	}
	if drop.Outcome != agent.Dropped || drop.Reason != agent.KernelQueueFull {
		t.Fatalf("queue never filled: %v", drop)
	}
	if !errors.Is(drop.Err(), syscall.EAGAIN) && !errors.Is(drop.Err(), syscall.ENOBUFS) {
		t.Fatalf("drop errno %v", drop.Err())
	}
	// Still full: the same nonce is reported again.
	if res := a.Beat(vlp.StatusOk, 0); res.Outcome != agent.Dropped || res.Nonce != drop.Nonce {
		t.Fatalf("second attempt %v, want drop of nonce %d", res, drop.Nonce)
	}
	// Free space, then the dropped nonce goes out.
	if _, err := r.Recv(time.Second); err != nil {
		t.Fatal(err)
	}
	res := a.Beat(vlp.StatusOk, 0)
	if !res.Sent() || res.Nonce != drop.Nonce {
		t.Fatalf("after space freed: %v, want sent nonce %d", res, drop.Nonce)
	}
	ds, err := r.Drain(100 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	want := uint64(2) // nonce 1 was read above
	for _, d := range ds {
		f, err := d.Frame()
		if err != nil {
			t.Fatal(err)
		}
		if f.Nonce != want {
			t.Fatalf("nonce %d, want %d", f.Nonce, want)
		}
		want++
	}
	if want != drop.Nonce+1 {
		t.Fatalf("received up to nonce %d, want %d", want-1, drop.Nonce)
	}
	if s := a.Stats(); s.Dropped[agent.KernelQueueFull] != 2 || s.Sent != drop.Nonce {
		t.Fatalf("stats %+v", s)
	}
}

func TestConnectWithoutObserver(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, path string)
		errno syscall.Errno
	}{
		{"path missing", func(*testing.T, string) {}, syscall.ENOENT},
		{"stale socket file", func(t *testing.T, path string) {
			// Bind then close without unlinking: the path exists, nobody listens.
			fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_DGRAM, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
				t.Fatal(err)
			}
			syscall.Close(fd)
		}, syscall.ECONNREFUSED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := sockPath(t)
			tt.setup(t, p)
			a, err := agent.DialUnix(p)
			if err == nil {
				a.Close()
				t.Fatal("connect succeeded without an observer")
			}
			if !errors.Is(err, agent.ErrNoObserver) || !errors.Is(err, tt.errno) {
				t.Fatalf("err %v: want ErrNoObserver and %v", err, tt.errno)
			}
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("error %q does not name the socket", err)
			}
		})
	}
}

// TestObserverGoneAndBack: the observer disappears (drops with NoObserver or
// PeerGone), comes back at the same path, and the agent reconnects after N
// drops and carries on with the next nonce.
func TestObserverGoneAndBack(t *testing.T) {
	p := sockPath(t)
	r := listenUnix(t, p)
	a := connect(t, agent.Options{SocketPath: p})
	if res := a.Beat(vlp.StatusOk, 0); !res.Sent() {
		t.Fatal(res)
	}
	recvFrame(t, r)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	seen := map[agent.DropReason]bool{}
	for i := 0; i < 3; i++ {
		res := a.Beat(vlp.StatusOk, 0)
		if res.Outcome != agent.Dropped || res.Nonce != 2 {
			t.Fatalf("beat with observer gone: %v", res)
		}
		seen[res.Reason] = true
	}
	if !seen[agent.NoObserver] || !seen[agent.PeerGone] {
		t.Fatalf("drop reasons %v, want NoObserver (ECONNREFUSED) then PeerGone (ENOTCONN)", seen)
	}

	const n = 3
	a.SetReconnectAfter(n)
	// Observer still absent: reconnect attempts fail, beats stay dropped.
	for i := 0; i < n; i++ {
		if res := a.Beat(vlp.StatusOk, 0); res.Outcome != agent.Dropped {
			t.Fatalf("beat %d: %v", i, res)
		}
	}
	if s := a.Stats(); s.ReconnectFailures == 0 || s.Reconnects != 0 {
		t.Fatalf("stats %+v: want a failed reconnect attempt", s)
	}

	r2 := listenUnix(t, p)
	var sentAt int
	for i := 1; i <= n; i++ {
		res := a.Beat(vlp.StatusOk, 0)
		if res.Sent() {
			if res.Nonce != 2 {
				t.Fatalf("after reconnect: nonce %d, want 2", res.Nonce)
			}
			sentAt = i
			break
		}
	}
	if sentAt == 0 {
		t.Fatalf("no beat sent within %d drops after the observer came back", n)
	}
	f, _ := recvFrame(t, r2)
	if f.Nonce != 2 {
		t.Fatalf("observer received nonce %d, want 2", f.Nonce)
	}
	if s := a.Stats(); s.Reconnects != 1 {
		t.Fatalf("reconnects %d, want 1", s.Reconnects)
	}
}

func TestUDPObserverGone(t *testing.T) {
	r := listenUDP(t)
	a := connect(t, agent.Options{UDPAddr: r.Addr()})
	if res := a.Beat(vlp.StatusOk, 0); !res.Sent() {
		t.Fatal(res)
	}
	r.Close()
	// The ICMP port-unreachable arrives asynchronously; a later send
	// reports it.
	for i := 0; i < 50; i++ {
		res := a.Beat(vlp.StatusOk, 0)
		if res.Outcome == agent.Dropped {
			if res.Reason != agent.NoObserver || !errors.Is(res.Err(), syscall.ECONNREFUSED) {
				t.Fatalf("drop %v, want NoObserver (ECONNREFUSED)", res)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no drop reported after the UDP receiver closed")
}

func TestRefusedStatus(t *testing.T) {
	tests := []struct {
		status vlp.Status
		want   error
	}{
		{vlp.StatusStall, agent.ErrStallRefused},
		{vlp.Status(9), agent.ErrBadStatus},
	}
	for _, tt := range tests {
		t.Run(tt.status.String(), func(t *testing.T) {
			p := sockPath(t)
			r := listenUnix(t, p)
			a := connect(t, agent.Options{SocketPath: p})
			res := a.Beat(tt.status, 0)
			if res.Outcome != agent.Failed || !errors.Is(res.Err(), tt.want) {
				t.Fatalf("got %v, want failed with %v", res, tt.want)
			}
			expectNothing(t, r)
			if res := a.Beat(vlp.StatusOk, 0); !res.Sent() || res.Nonce != 1 {
				t.Fatalf("next beat %v: the refused one must not consume a nonce", res)
			}
			if s := a.Stats(); s.Refused != 1 {
				t.Fatalf("refused %d", s.Refused)
			}
		})
	}
}

func TestTerminalFrames(t *testing.T) {
	p := sockPath(t)
	r := listenUnix(t, p)
	a := connect(t, agent.Options{SocketPath: p})
	clock := int64(5000)
	a.SetClockForTest(func() int64 { return clock })

	a.Beat(vlp.StatusOk, 7)
	for i := 0; i < 3; i++ {
		if res := a.Terminal(); !res.Sent() || res.Nonce != vlp.NonceTerminal {
			t.Fatal(res)
		}
	}
	clock = 9000
	a.Terminal()
	if res := a.Beat(vlp.StatusOk, 7); res.Nonce != 2 {
		t.Fatalf("terminal frames must not consume regular nonces: %v", res)
	}

	f, _ := recvFrame(t, r)
	if f.Nonce != 1 || f.Timestamp != 5000 {
		t.Fatalf("first beat %+v", f)
	}
	wantTs := []uint64{5000, 5001, 5002, 9000}
	for i, want := range wantTs {
		f, _ := recvFrame(t, r)
		if !f.IsTerminal() || f.Payload != 0 || f.Status != vlp.StatusCritical {
			t.Fatalf("terminal %d: %+v", i, f)
		}
		if f.Timestamp != want {
			t.Fatalf("terminal %d: timestamp %d, want %d", i, f.Timestamp, want)
		}
	}
	if f, _ := recvFrame(t, r); f.Nonce != 2 || f.Timestamp != 9000 {
		t.Fatalf("beat after terminals %+v", f)
	}
	if s := a.Stats(); s.TerminalSent != 4 || s.Sent != 6 {
		t.Fatalf("stats %+v", s)
	}
}

func TestClockRegressionHoldsTimestamp(t *testing.T) {
	p := sockPath(t)
	r := listenUnix(t, p)
	a := connect(t, agent.Options{SocketPath: p})
	readings := []int64{100, 200, 150, 120, 300}
	i := 0
	a.SetClockForTest(func() int64 { v := readings[i]; i++; return v })
	for range readings {
		if res := a.Beat(vlp.StatusOk, 0); !res.Sent() {
			t.Fatal(res)
		}
	}
	for _, want := range []uint64{100, 200, 200, 200, 300} {
		if f, _ := recvFrame(t, r); f.Timestamp != want {
			t.Fatalf("timestamp %d, want %d", f.Timestamp, want)
		}
	}
	if s := a.Stats(); s.ClockRegressions != 2 {
		t.Fatalf("clock regressions %d, want 2", s.ClockRegressions)
	}
}

func TestNonceWrap(t *testing.T) {
	p := sockPath(t)
	r := listenUnix(t, p)
	a := connect(t, agent.Options{SocketPath: p})
	a.SetNonceForTest(vlp.NonceWrapFrom - 1)
	for range 4 {
		a.Beat(vlp.StatusOk, 0)
	}
	for _, want := range []uint64{vlp.NonceWrapFrom - 1, vlp.NonceWrapFrom, 0, 1} {
		if f, _ := recvFrame(t, r); f.Nonce != want {
			t.Fatalf("nonce %#x, want %#x", f.Nonce, want)
		}
	}
}

// TestConcurrentBeats: several goroutines beat at once; every nonce is
// delivered exactly once and the sequence has no gap.
func TestConcurrentBeats(t *testing.T) {
	p := sockPath(t)
	r := listenUnix(t, p)
	a := connect(t, agent.Options{SocketPath: p})
	const workers, per = 8, 200
	got := make(chan []uint64, 1)
	go func() {
		var ns []uint64
		for len(ns) < workers*per {
			f, _, err := r.RecvFrame(5 * time.Second)
			if err != nil {
				break
			}
			ns = append(ns, f.Nonce)
		}
		got <- ns
	}()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; {
				res := a.Beat(vlp.StatusOk, uint32(i))
				switch {
				case res.Sent():
					i++
				case res.Outcome == agent.Dropped && res.Reason == agent.KernelQueueFull:
					runtime.Gosched()
				default:
					t.Errorf("beat: %v", res)
					return
				}
			}
		}()
	}
	wg.Wait()
	ns := <-got
	if len(ns) != workers*per {
		t.Fatalf("received %d frames, want %d", len(ns), workers*per)
	}
	for i, n := range ns {
		if n != uint64(i+1) {
			t.Fatalf("frame %d: nonce %d (kernel delivers a connected socket's datagrams in order)", i, n)
		}
	}
}

func TestClosed(t *testing.T) {
	p := sockPath(t)
	listenUnix(t, p)
	a := connect(t, agent.Options{SocketPath: p})
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if res := a.Beat(vlp.StatusOk, 0); res.Outcome != agent.Failed || !errors.Is(res.Err(), agent.ErrClosed) {
		t.Fatalf("beat after close: %v", res)
	}
	if res := a.Terminal(); !errors.Is(res.Err(), agent.ErrClosed) {
		t.Fatalf("terminal after close: %v", res)
	}
	if err := a.Reconnect(); !errors.Is(err, agent.ErrClosed) {
		t.Fatalf("reconnect after close: %v", err)
	}
}

func TestSocketPathTooLong(t *testing.T) {
	p := "/tmp/" + strings.Repeat("x", 120)
	_, err := agent.DialUnix(p)
	if err == nil || !strings.Contains(err.Error(), "too long for a Unix socket address") {
		t.Fatalf("err %v", err)
	}
}

func TestInvalidOptions(t *testing.T) {
	tests := []struct {
		name string
		o    agent.Options
	}{
		{"none", agent.Options{}},
		{"both", agent.Options{SocketPath: "/x", UDPAddr: "127.0.0.1:1"}},
		{"negative reconnect", agent.Options{SocketPath: "/x", ReconnectAfter: -1}},
		{"udp port 0", agent.Options{UDPAddr: "127.0.0.1:0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := agent.Connect(tt.o)
			if err == nil {
				a.Close()
				t.Fatal("accepted")
			}
			if !errors.Is(err, agent.ErrInvalidOptions) {
				t.Fatalf("err %v, want ErrInvalidOptions", err)
			}
		})
	}
}

func TestBeatDoesNotAllocate(t *testing.T) {
	for _, tr := range transports() {
		t.Run(tr.name, func(t *testing.T) {
			r, o := tr.open(t)
			a := connect(t, o)
			stop := drain(r)
			allocs := testing.AllocsPerRun(2000, func() {
				if res := a.Beat(vlp.StatusOk, 1); res.Outcome == agent.Failed {
					t.Fatal(res)
				}
			})
			stop()
			if allocs != 0 {
				t.Fatalf("Beat allocates %.2f times per call", allocs)
			}
			// The drop path (nobody reading any more) must not allocate either.
			allocs = testing.AllocsPerRun(200, func() { a.Beat(vlp.StatusOk, 1) })
			if allocs != 0 {
				t.Fatalf("dropped Beat allocates %.2f times per call", allocs)
			}
			s := a.Stats()
			if s.Sent == 0 {
				t.Fatal("nothing was sent")
			}
			// Over a Unix socket every send to the closed receiver is refused,
			// so the drop path was really measured (over UDP the refusal
			// depends on when the ICMP error arrives).
			if tr.name == "unix" && s.TotalDropped() == 0 {
				t.Fatalf("no beat was dropped after the receiver closed: %+v", s)
			}
		})
	}
}

// drain discards everything r receives until stop is called; stop closes r.
func drain(r *agenttest.Receiver) (stop func()) {
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		r.Discard()
	}()
	return func() { r.Close(); <-exited }
}
