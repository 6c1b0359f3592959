//go:build linux

package agent_test

import (
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/pkg/agent"
	"github.com/varta-go/varta/pkg/agent/agenttest"
	"github.com/varta-go/varta/pkg/vlp"
	"github.com/varta-go/varta/pkg/vlp/secure"
)

// maxDropRatio is the share of dropped sends above which a Beat benchmark
// fails: a dropped send (EAGAIN on a full queue) skips the copy into the
// receiver's queue and the wake-up, so a benchmark that drops measures a
// cheaper operation than the one it names.
const maxDropRatio = 0.001

// BenchmarkBeat measures one Beat per iteration (send=beat) next to
// baselines on the same kind of socket, to the same kind of receiver, with
// datagrams of the same size (32 bytes plain; 60 or 64 bytes sealed):
//
//   - send=raw writes a pre-built datagram with a raw write system call
//     (unix.RawSyscall) on a connected, non-blocking SOCK_DGRAM socket:
//     what send() costs a C program, the floor for any sender;
//   - send=write does the same through unix.Write, Go's ordinary system
//     call path (which tells the scheduler the call may block);
//   - send=seal+raw (secure UDP only) also seals the frame at every
//     iteration with the sealer the Agent uses, committing the counter
//     after each accepted send.
//
// So for secure UDP beat/raw includes the cost of sealing and
// beat/seal+raw does not.
//
// Every send must be a delivered datagram: a send refused with EAGAIN (a
// full queue) skips the copy into the receiver's queue and its wake-up, and
// a UDP datagram the receiver drops on a full buffer skips the receiver's
// side, so a benchmark that drops measures a cheaper operation than the one
// it names. The receiver drains in a goroutine the way the observer does
// (batched reads through the runtime's poller), and the sends go in bursts
// that fit in the socket's queue: after each burst the timer stops until
// the receiver has read everything. A run fails when more than maxDropRatio
// of its sends were refused or never read, and reports the ratio.
//
// Compare the columns with benchstat (the first column, raw, is the base):
//
//	go test -run '^$' -bench BenchmarkBeat -benchmem -count 10 ./pkg/agent/ > b.txt
//	benchstat -col /send b.txt
func BenchmarkBeat(b *testing.B) { beatColumns(b, paced) }

// BenchmarkBeatQueued is BenchmarkBeat with a receiver that reads only
// between bursts, while the timer is stopped: each burst goes into the
// queue, so no send wakes a parked reader except the first of a burst, in
// every column alike. With a reader draining during the burst
// (BenchmarkBeat) how often a send finds the reader parked, and pays the
// wake-up, depends on how fast the sender is, which favours the fastest
// column; on a Unix socket, where the sender's write runs the reader's
// wake-up, that alone moves beat/raw by 0.2 on this machine. This
// benchmark compares the send paths themselves.
//
//	go test -run '^$' -bench BenchmarkBeatQueued -benchmem -count 10 ./pkg/agent/ > q.txt
//	benchstat -filter '.unit:cpu-ns/op' -col /send q.txt
func BenchmarkBeatQueued(b *testing.B) { beatColumns(b, queued) }

// beatColumns runs the columns of BenchmarkBeat for every transport, each
// through run (paced or queued).
func beatColumns(b *testing.B, run func(*testing.B, *agenttest.Receiver, int, func() bool)) {
	for _, tr := range benchTransports(b) {
		secured := strings.HasPrefix(tr.name, "secure-")
		b.Run("transport="+tr.name+"/send=raw", func(b *testing.B) {
			r, o := tr.open(b)
			wire := sealedBeat(b, o)
			fd := rawSocket(b, o)
			defer unix.Close(fd)
			run(b, r, fd, func() bool { return rawSend(b, fd, wire) })
		})
		b.Run("transport="+tr.name+"/send=write", func(b *testing.B) {
			r, o := tr.open(b)
			wire := sealedBeat(b, o)
			fd := rawSocket(b, o)
			defer unix.Close(fd)
			run(b, r, fd, func() bool { return writeSend(b, fd, wire) })
		})
		if secured {
			b.Run("transport="+tr.name+"/send=seal+raw", func(b *testing.B) {
				r, o := tr.open(b)
				s := newSealer(b, o)
				var wire [secure.MaxFrameSize]byte
				frame := beatFrame()
				fd := rawSocket(b, o)
				defer unix.Close(fd)
				run(b, r, fd, func() bool {
					if !rawSend(b, fd, wire[:s.Seal(wire[:], &frame)]) {
						return false
					}
					s.Commit()
					return true
				})
			})
		}
		b.Run("transport="+tr.name+"/send=beat", func(b *testing.B) {
			r, o := tr.open(b)
			a, err := agent.Connect(o)
			if err != nil {
				b.Fatal(err)
			}
			defer a.Close()
			var failed uint64
			run(b, r, a.FDForTest(), func() bool {
				res := a.Beat(vlp.StatusOk, 1)
				if res.Outcome == agent.Failed {
					failed++
				}
				return res.Outcome == agent.Sent
			})
			if failed != 0 {
				b.Fatalf("%d beats failed", failed)
			}
		})
	}
}

// rawSend writes buf on fd once with a raw system call (retrying EINTR) and
// reports whether the kernel accepted it; EAGAIN and ENOBUFS are drops,
// anything else fails the benchmark.
func rawSend(b *testing.B, fd int, buf []byte) bool {
	for {
		_, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
		switch e {
		case 0:
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN, unix.ENOBUFS:
			return false
		}
		b.Fatalf("raw send: %v", e)
	}
}

// writeSend is rawSend through unix.Write.
func writeSend(b *testing.B, fd int, buf []byte) bool {
	for {
		_, err := unix.Write(fd, buf)
		switch err {
		case nil:
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN, unix.ENOBUFS:
			return false
		}
		b.Fatalf("raw send: %v", err)
	}
}

// benchQueue is the queue room a benchmark asks for: the sender's send
// buffer (a Unix datagram waiting in the receiver's queue is charged to
// the sender) and the receiver's receive buffer (UDP).
const benchQueue = 16 << 20

// paced runs send b.N times with the timer running, in bursts that fit in
// the queue between fd (the sending socket) and r: between bursts the timer
// stops until r has read everything sent. It then fails the benchmark if
// more than maxDropRatio of the sends were refused or never read.
func paced(b *testing.B, r *agenttest.Receiver, fd int, send func() bool) {
	b.Helper()
	stop := drain(r)
	defer stop()
	bursts(b, r, fd, send, func(sent uint64) uint64 { return settle(r, sent) })
}

// queued is paced without the draining goroutine: between bursts, with
// the timer stopped, it reads what the burst queued (BenchmarkBeatQueued).
func queued(b *testing.B, r *agenttest.Receiver, fd int, send func() bool) {
	b.Helper()
	var got uint64
	bursts(b, r, fd, send, func(sent uint64) uint64 {
		for got < sent {
			if _, err := r.Recv(100 * time.Millisecond); err != nil {
				break // a datagram was lost: counted by bursts
			}
			got++
		}
		return got
	})
}

// bursts runs send b.N times with the timer running, in bursts that fit in
// the queue between fd and r; after each burst, with the timer stopped,
// collect(sent) returns how many datagrams r has read in all. It reports
// cpu-ns/op and drop-ratio, and fails the benchmark when more than
// maxDropRatio of the sends were refused or never read.
func bursts(b *testing.B, r *agenttest.Receiver, fd int, send func() bool, collect func(sent uint64) uint64) {
	b.Helper()
	burst := burstSize(b, r, fd)
	// The sending goroutine keeps its thread, whose CPU clock counts only
	// the time it ran: cpu-ns/op, unlike ns/op, does not grow when other
	// work on a busy machine takes the CPU away mid-burst.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var sent, refused uint64
	var cpu time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	t0 := threadCPU(b)
	for i := 0; i < b.N; i++ {
		if send() {
			sent++
		} else {
			refused++
		}
		if (i+1)%burst == 0 {
			cpu += threadCPU(b) - t0
			b.StopTimer()
			collect(sent)
			b.StartTimer()
			t0 = threadCPU(b)
		}
	}
	cpu += threadCPU(b) - t0
	b.StopTimer()
	got := collect(sent)
	lost := refused
	if got < sent {
		lost += sent - got
	}
	ratio := float64(lost) / float64(sent+refused)
	b.ReportMetric(ratio, "drop-ratio")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	if ratio > maxDropRatio {
		b.Fatalf("%d of %d sends dropped (%d refused by the kernel, %d sent but never read; %.4f > %.4f): the numbers would not measure delivered datagrams", lost, sent+refused, refused, lost-refused, ratio, maxDropRatio)
	}
}

// threadCPU reads the calling thread's CPU clock.
func threadCPU(b *testing.B) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ts.Nano())
}

// burstSize sizes the bursts of paced to half of what the queue between fd
// and r holds, at most 1024. It first asks for benchQueue of send and
// receive buffer where the process may (SO_SNDBUFFORCE and SO_RCVBUFFORCE
// need CAP_NET_ADMIN; otherwise the capped SO_SNDBUF/SO_RCVBUF apply). A
// queued datagram is charged about 1 KiB whatever its size; 2 KiB is
// counted. A Unix receiver also holds at most net.unix.max_dgram_qlen
// datagrams.
func burstSize(b *testing.B, r *agenttest.Receiver, fd int) int {
	b.Helper()
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, benchQueue) != nil {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, benchQueue); err != nil {
			b.Fatal(err)
		}
	}
	if err := r.SetReadBuffer(benchQueue); err != nil {
		b.Fatal(err)
	}
	room, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF)
	if err != nil {
		b.Fatal(err)
	}
	if rb := r.ReadBuffer(); rb > 0 && rb < room {
		room = rb
	}
	n := min(room/2048/2, 1024)
	if domain, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN); domain == unix.AF_UNIX {
		qlen := 10 // the kernel's default
		if v, err := os.ReadFile("/proc/sys/net/unix/max_dgram_qlen"); err == nil {
			if q, err := strconv.Atoi(strings.TrimSpace(string(v))); err == nil {
				qlen = q
			}
		}
		n = min(n, qlen/2)
	}
	return max(n, 1)
}

// settle waits until r has read sent datagrams or has read nothing for
// 100 ms, and returns how many it read.
func settle(r *agenttest.Receiver, sent uint64) uint64 {
	got := r.Received()
	for last, idle := got, time.Now(); got < sent && time.Since(idle) < 100*time.Millisecond; {
		runtime.Gosched()
		if got = r.Received(); got != last {
			last, idle = got, time.Now()
		}
	}
	return got
}

// rawSocket returns a connected, non-blocking datagram socket to the
// transport o describes.
func rawSocket(b *testing.B, o agent.Options) int {
	b.Helper()
	var (
		sa     unix.Sockaddr
		family int
	)
	if o.SocketPath != "" {
		sa, family = &unix.SockaddrUnix{Name: o.SocketPath}, unix.AF_UNIX
	} else {
		ua, err := net.ResolveUDPAddr("udp", o.UDPAddr)
		if err != nil {
			b.Fatal(err)
		}
		sa4 := &unix.SockaddrInet4{Port: ua.Port}
		copy(sa4.Addr[:], ua.IP.To4())
		sa, family = sa4, unix.AF_INET
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	if err := unix.Connect(fd, sa); err != nil {
		unix.Close(fd)
		b.Fatal(err)
	}
	return fd
}

// beatFrame is the encoded frame the baselines send.
func beatFrame() [vlp.FrameSize]byte {
	f := vlp.Frame{Status: vlp.StatusOk, Pid: uint32(unix.Getpid()), Timestamp: 1, Nonce: 1, Payload: 1}
	return f.Marshal()
}

// sealedBeat returns the datagram an Agent with options o would send: the
// encoded frame, sealed for secure UDP.
func sealedBeat(b *testing.B, o agent.Options) []byte {
	frame := beatFrame()
	if o.SharedKey == nil && o.MasterKey == nil {
		return frame[:]
	}
	wire := make([]byte, secure.MaxFrameSize)
	return wire[:newSealer(b, o).Seal(wire, &frame)]
}

func newSealer(b *testing.B, o agent.Options) *secure.Sealer {
	b.Helper()
	var (
		s   *secure.Sealer
		err error
	)
	if o.SharedKey != nil {
		s, err = secure.NewSharedSealer(*o.SharedKey)
	} else {
		s, err = secure.NewMasterSealer(*o.MasterKey, uint32(unix.Getpid()))
	}
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkBeatParallel measures contended Beat calls from GOMAXPROCS
// goroutines sharing one Agent: what the mutex costs when beats collide.
// Its senders are not paced, so most beats find the queue full (the
// drop-ratio metric says how many) and take the cheaper drop path; the
// cost of a delivered beat is BenchmarkBeat's.
func BenchmarkBeatParallel(b *testing.B) {
	p := sockPath(b)
	r := listenUnix(b, p)
	a, err := agent.DialUnix(p)
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	stop := drain(r)
	defer stop()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			a.Beat(vlp.StatusOk, 1)
		}
	})
	s := a.Stats()
	b.ReportMetric(float64(s.TotalDropped())/float64(s.Sent+s.TotalDropped()), "drop-ratio")
}
