package ingest

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/events"
	"github.com/varta-go/varta/cmd/varta-watch/internal/listener"
	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/pkg/vlp"
	"github.com/varta-go/varta/pkg/vlp/secure"
)

// beats counts the beat events per pid.
func beats(ev *collect) map[uint32]int {
	m := map[uint32]int{}
	for _, e := range *ev {
		if e.Kind == events.KindBeat {
			m[e.Pid]++
		}
	}
	return m
}

// TestUnixSenderThrottled: a process whose frames keep being refused
// (bad CRC, spoofed pid) spends its allowance and is then dropped on
// arrival; an honest agent in the same batches is never touched, and the
// global bucket is not spent on the flood.
func TestUnixSenderThrottled(t *testing.T) {
	p, c, ev := newPipe(t, Options{KernelCredentials: true, SelfUID: 7, GlobalRate: 100, GlobalBurst: 100}, 16)
	b := listener.NewBatch()
	nonce := uint64(0)
	now := int64(1e9)
	send := func(bad int) {
		frames := make([]vlp.Frame, 0, bad+1)
		for i := 0; i < bad; i++ {
			frames = append(frames, vlp.Frame{Pid: 100, Nonce: 1}) // spoofed: sent by pid 666
		}
		nonce++
		frames = append(frames, vlp.Frame{Pid: 200, Nonce: nonce})
		fill(b, frames, 7)
		for i := 0; i < bad; i++ {
			b.D[i].Pid = 666
			if i%2 == 0 {
				b.D[i].Data[30] ^= 1 // and a bad CRC
			}
		}
		p.UnixBatch(b, len(frames), now, 0)
	}
	for r := 0; r < 10; r++ {
		send(40)
		now += 10e6
	}
	refused := c.FrameAuthFailures.Load() + c.DecodeErrors[vlp.KindBadCrc].Load()
	if refused != SenderPenaltyBurst {
		t.Fatalf("%d refusals before the throttle, want %d", refused, SenderPenaltyBurst)
	}
	if got := c.SenderThrottled[stats.TransportUnix].Load(); got != 400-SenderPenaltyBurst {
		t.Fatalf("throttled %d", got)
	}
	if beats(ev)[200] != 10 || c.RateLimited[stats.RateLimitGlobal].Load() != 0 {
		t.Fatalf("honest beats %d, global drops %d", beats(ev)[200], c.RateLimited[stats.RateLimitGlobal].Load())
	}
	// One second later the offender has SenderPenaltyRate refusals again.
	now += 1e9
	send(40)
	if got := c.FrameAuthFailures.Load() + c.DecodeErrors[vlp.KindBadCrc].Load() - refused; got != SenderPenaltyRate {
		t.Fatalf("%d refusals after a second, want %d", got, SenderPenaltyRate)
	}
}

// TestSecureSourceThrottled: garbage from one source address costs AEAD
// work only up to its allowance; another source's frames are accepted.
func TestSecureSourceThrottled(t *testing.T) {
	var key secure.Key
	key[0] = 9
	op, err := secure.NewOpener(secure.OpenerConfig{SharedKeys: []secure.Key{key}})
	if err != nil {
		t.Fatal(err)
	}
	p, c, ev := newPipe(t, Options{Opener: op, UDPOrigin: vlp.OriginNetworkUnverified, GlobalRate: 10, GlobalBurst: 10}, 16)
	s, _ := secure.NewSharedSealer(key)
	bad := netip.MustParseAddrPort("127.0.0.1:4000")
	good := netip.MustParseAddrPort("127.0.0.1:5000")
	b := listener.NewBatch()
	for r := 0; r < 5; r++ {
		wire := make([][]byte, 0, 64)
		for i := 0; i < 63; i++ {
			wire = append(wire, make([]byte, 60))
		}
		w := (&vlp.Frame{Pid: 300, Nonce: uint64(r + 1)}).Marshal()
		out := make([]byte, s.Size())
		wire = append(wire, out[:s.Seal(out, &w)])
		s.Commit()
		n := udpBatch(b, wire...)
		for i := 0; i < n; i++ {
			b.D[i].From = bad
		}
		b.D[n-1].From = good
		p.SecureBatch(b, n, int64(r+1)*1e6, 1e9)
	}
	if got := c.FrameDecryptFailures.Load(); got != SenderPenaltyBurst {
		t.Fatalf("%d AEAD failures paid for the garbage, want %d", got, SenderPenaltyBurst)
	}
	if beats(ev)[300] != 5 || c.RateLimited[stats.RateLimitGlobal].Load() != 0 {
		t.Fatalf("honest beats %d, global drops %d, replays %d, decode %d, out of order %d", beats(ev)[300], c.RateLimited[stats.RateLimitGlobal].Load(),
			c.SecureReplayRefused.Load(), c.DecodeErrors[vlp.KindBadCrc].Load(), c.OutOfOrder.Load())
	}
}

// TestSenderTableBounded: more offenders than the table holds evict the
// most recovered entries, counted; the table never grows.
func TestSenderTableBounded(t *testing.T) {
	evictions := 0
	tb := newSenderTable[uint32](func() { evictions++ })
	for pid := uint32(1); pid <= 3*senderTableSize; pid++ {
		tb.charge(pid, 1)
	}
	if tb.len() != senderTableSize || evictions != 2*senderTableSize {
		t.Fatalf("len %d evictions %d", tb.len(), evictions)
	}
	for i := 0; i < SenderPenaltyBurst; i++ {
		tb.charge(7, 2)
	}
	if !tb.throttled(7, 2) || tb.throttled(8, 2) {
		t.Fatal("throttle state wrong")
	}
}

// TestAnomalyLinesLimited: decode lines beyond the burst are counted, not
// written, and a summary line reports them.
func TestAnomalyLinesLimited(t *testing.T) {
	p, c, ev := newPipe(t, Options{}, 16)
	for i := 0; i < 100; i++ {
		p.anomaly(events.Event{Kind: events.KindDecode, Ns: 1e9, Text: "BadCrc"})
	}
	p.anomaly(events.Event{Kind: events.KindMismatch, Ns: 1e9, Pid: 5, Text: events.MismatchAuthFailure})
	if len(*ev) != LineBurst+1 || c.EventsSuppressed[stats.LineDecode].Load() != 100-LineBurst {
		t.Fatalf("%d lines, %d suppressed", len(*ev), c.EventsSuppressed[stats.LineDecode].Load())
	}
	p.FlushSuppressed(1e9 + SummaryEvery - 1)
	if len(*ev) != LineBurst+1 {
		t.Fatal("summary before its period")
	}
	p.FlushSuppressed(1e9 + SummaryEvery)
	last := (*ev)[len(*ev)-1]
	if last.Kind != events.KindDecode || !strings.HasPrefix(last.Text, "suppressed 36 decode lines") {
		t.Fatalf("summary %+v", last)
	}
	p.FlushSuppressed(1e9 + 3*SummaryEvery)
	if (*ev)[len(*ev)-1] != last {
		t.Fatal("a second summary with nothing suppressed")
	}
}

// TestBeatTimeFromArrival: a beat read late is recorded at its kernel
// arrival time, guarded by the last read that emptied the socket and by
// the read time.
func TestBeatTimeFromArrival(t *testing.T) {
	p, c, ev := newPipe(t, Options{KernelCredentials: true, SelfUID: 7}, 16)
	var late []int64
	p.opts.LateBound = 100e6
	p.OnLate = func(now, delay int64) { late = append(late, delay) }
	b := listener.NewBatch()
	const wall = int64(1_700_000_000e9)
	step := func(now, wallAt, arrival int64, nonce uint64) uint64 {
		fill(b, []vlp.Frame{{Pid: 100, Nonce: nonce}}, 7)
		b.D[0].Arrival = arrival
		p.UnixBatch(b, 1, now, wallAt)
		return (*ev)[len(*ev)-1].Ns
	}
	if got := step(10e9, wall, wall-50e6, 1); got != 10e9 {
		t.Fatalf("first batch (socket never drained): %d, want the read time", got)
	}
	if got := step(11e9, wall+1e9, wall+1e9-50e6, 2); got != 11e9-50e6 {
		t.Fatalf("read 50 ms late: %d", got)
	}
	if got := step(12e9, wall+2e9, wall-10e9, 3); got != 11e9 {
		t.Fatalf("arrival before the last empty read (a wall-clock step): %d, want 11e9", got)
	}
	if got := step(13e9, wall+3e9, wall+9e9, 4); got != 13e9 {
		t.Fatalf("arrival after the read: %d", got)
	}
	if got := step(14e9, wall+4e9, wall+3e9, 5); got != 13e9 {
		t.Fatalf("read 1 s late: %d", got)
	}
	if len(late) != 2 || late[0] != 12e9 || late[1] != 1e9 {
		t.Fatalf("late reports %v, want 12 s (the wall-clock step: a grace, never a stall) and 1 s", late)
	}
	if n := c.BeatTimeClamped.Load(); n != 2 {
		t.Fatalf("clamped beat times counted %d, want 2 (before the empty read, after the read)", n)
	}
}

// TestReceiveErrorLine: a receive error on either listener is counted and
// written as an io line naming the transport.
func TestReceiveErrorLine(t *testing.T) {
	p, c, ev := newPipe(t, Options{}, 16)
	p.ReceiveError(stats.TransportUDP, errors.New("recvmmsg: no buffer space available"), 5)
	p.ReceiveError(stats.TransportUnix, errors.New("recvmmsg: bad address"), 6)
	if c.IOErrors.Load() != 2 || len(*ev) != 2 {
		t.Fatalf("io errors %d, lines %d", c.IOErrors.Load(), len(*ev))
	}
	if e := (*ev)[0]; e.Kind != events.KindIO || e.Ns != 5 || e.Text != "udp: recvmmsg: no buffer space available" {
		t.Fatalf("%+v", e)
	}
}

// TestUDPSourceCarryingManyAgents: one source address may carry many
// agents (a relay, varta-beat load); refusals about claimed pids (pid_max,
// out of order) are not charged to it, so its other agents keep beating.
func TestUDPSourceCarryingManyAgents(t *testing.T) {
	p, c, ev := newPipe(t, Options{PidMax: 32768, UDPOrigin: vlp.OriginNetworkUnverified}, 64)
	src := netip.MustParseAddrPort("127.0.0.1:7000")
	b := listener.NewBatch()
	for r := 0; r < 20; r++ {
		var wire [][]byte
		for pid := uint32(100); pid < 110; pid++ {
			w := (&vlp.Frame{Pid: pid, Nonce: uint64(r + 1)}).Marshal()
			wire = append(wire, w[:])
		}
		for k := 0; k < 10; k++ {
			w := (&vlp.Frame{Pid: 40000, Nonce: 1}).Marshal() // above pid_max
			wire = append(wire, w[:])
			w = (&vlp.Frame{Pid: 100, Nonce: 1}).Marshal() // out of order
			wire = append(wire, w[:])
		}
		n := udpBatch(b, wire...)
		for i := 0; i < n; i++ {
			b.D[i].From = src
		}
		p.UDPBatch(b, n, int64(r+1)*1e6, 0)
	}
	if got := c.SenderThrottled[stats.TransportUDP].Load(); got != 0 {
		t.Fatalf("source throttled %d times", got)
	}
	if m := beats(ev); m[100] != 20 || m[109] != 20 {
		t.Fatalf("beats %v", m)
	}
	// Garbage from the same source is charged.
	wire := make([][]byte, 40)
	for i := range wire {
		wire[i] = make([]byte, 32)
	}
	n := udpBatch(b, wire...)
	for i := 0; i < n; i++ {
		b.D[i].From = src
	}
	p.UDPBatch(b, n, 100e6, 0)
	if got := c.SenderThrottled[stats.TransportUDP].Load(); got != 40-SenderPenaltyBurst {
		t.Fatalf("garbage: throttled %d", got)
	}
}

// TestArrivalTime: the guarded move of a kernel arrival time (wall clock)
// onto the stall clock, with the offset taken at the read, for reads that
// are coalesced (--drain-interval-ms) or late.
func TestArrivalTime(t *testing.T) {
	const (
		now  = int64(50e9)            // stall clock at the read
		wall = int64(1_700_000_000e9) // wall clock at the same moment
		off  = now - wall             // stall = wall + off
		prev = now - int64(250*1e6)   // last read that found the socket empty
		ms   = int64(time.Millisecond)
	)
	for _, tc := range []struct {
		name             string
		arrival, drained int64
		want             int64
		clamped          bool
	}{
		{"no arrival time: the read time", 0, prev, now, false},
		{"socket never drained: the read time", wall - 100*ms, -1, now, false},
		{"queued 100 ms before the drain", wall - 100*ms, prev, now - 100*ms, false},
		{"arrived just as the read began", wall, prev, now, false},
		{"arrived just after the previous drain", prev - off + ms, prev, prev + ms, false},
		{"within the slack before the previous drain", prev - off - ClampSlack/2, prev, prev - ClampSlack/2, false},
		{"before the previous drain (wall clock stepped forward): clamped", wall - 10e9, prev, prev, true},
		{"after the read (wall clock stepped back): clamped", wall + 5e9, prev, now, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, clamped := arrivalTime(tc.arrival, now, wall, tc.drained)
			if got != tc.want || clamped != tc.clamped {
				t.Fatalf("arrivalTime = %d (clamped %v), want %d (clamped %v)", got, clamped, tc.want, tc.clamped)
			}
		})
	}
}
