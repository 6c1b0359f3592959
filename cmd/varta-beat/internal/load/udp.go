package load

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"syscall"
	"time"

	"github.com/varta-go/varta/pkg/agent"
	"github.com/varta-go/varta/pkg/vlp"
	"github.com/varta-go/varta/pkg/vlp/secure"
)

// synthetic is the state of one UDP agent with a made-up pid. Over secure
// UDP each has its own session (salt, prefix, counter) like a real agent.
type synthetic struct {
	pid    uint32
	nonce  uint64
	sealer *secure.Sealer
}

// drawPids picks n distinct pids in [2, pidMax) (Floyd's algorithm: n
// draws, no table of pidMax entries).
func drawPids(n, pidMax int, rng *rand.Rand) []uint32 {
	span := pidMax - 2
	chosen := make(map[int]struct{}, n)
	out := make([]uint32, 0, n)
	for j := span - n; j < span; j++ {
		v := rng.IntN(j + 1)
		if _, dup := chosen[v]; dup {
			v = j
		}
		chosen[v] = struct{}{}
		out = append(out, uint32(v+2))
	}
	return out
}

// errno extracts the errno from a net error.
func errno(err error) error {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return err
}

func runUDP(ctx context.Context, o Options) (Report, error) {
	rep := Report{Transport: "udp " + o.Target.UDPAddr, Agents: o.Agents, Rate: o.Rate, Duration: o.Duration}
	seed := o.Seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	pids := drawPids(o.Agents, o.PidMax, rand.New(rand.NewPCG(seed, 0x76617274)))
	rep.PidRange = fmt.Sprintf("%d synthetic pids in [2, %d)", len(pids), o.PidMax)
	agents := make([]synthetic, len(pids))
	for i, p := range pids {
		agents[i] = synthetic{pid: p, nonce: 1}
		var err error
		switch {
		case o.Target.SharedKey != nil:
			agents[i].sealer, err = secure.NewSharedSealer(*o.Target.SharedKey)
		case o.Target.MasterKey != nil:
			agents[i].sealer, err = secure.NewMasterSealer(*o.Target.MasterKey, p)
		}
		if err != nil {
			return rep, fmt.Errorf("load: secure session for pid %d: %w", p, err)
		}
	}
	switch {
	case o.Target.SharedKey != nil:
		rep.Transport = "secure udp (shared key) " + o.Target.UDPAddr
	case o.Target.MasterKey != nil:
		rep.Transport = "secure udp (master key) " + o.Target.UDPAddr
	}

	conn, err := net.Dial("udp", o.Target.UDPAddr)
	if err != nil {
		return rep, fmt.Errorf("load: connect UDP socket to %s: %w", o.Target.UDPAddr, err)
	}
	defer conn.Close()
	// A deep send buffer absorbs scheduling hiccups of this process.
	if uc, ok := conn.(*net.UDPConn); ok {
		_ = uc.SetWriteBuffer(4 << 20)
	}

	// Beat j overall goes to agent j mod N at start + j*step/N: every agent
	// beats once per step, evenly spread.
	total := int64(float64(o.Agents) * o.Rate * o.Duration.Seconds())
	slot := float64(interval(o.Rate)) / float64(o.Agents)
	var (
		frame vlp.Frame
		buf   [vlp.FrameSize]byte
		wire  [secure.MaxFrameSize]byte
	)
	start := time.Now()
	for j := int64(0); j < total; j++ {
		due := start.Add(time.Duration(float64(j) * slot))
		if d := time.Until(due); d > 0 {
			if ctx.Err() != nil {
				break
			}
			time.Sleep(d)
		} else if -d > rep.MaxLag {
			rep.MaxLag = -d
		}
		ag := &agents[j%int64(len(agents))]
		ts := time.Since(start)
		frame = vlp.Frame{Status: vlp.StatusOk, Pid: ag.pid, Timestamp: uint64(ts), Nonce: ag.nonce}
		frame.Encode(&buf)
		out := buf[:]
		if ag.sealer != nil {
			out = wire[:ag.sealer.Seal(wire[:], &buf)]
		}
		_, err := conn.Write(out)
		r := agent.Result{Outcome: agent.Sent}
		if err != nil {
			r = agent.Classify(errno(err))
		}
		switch r.Outcome {
		case agent.Sent:
			rep.Sent++
			if ag.sealer != nil {
				ag.sealer.Commit()
			}
			if ag.nonce == vlp.NonceWrapFrom {
				ag.nonce = 0
			} else {
				ag.nonce++
			}
		case agent.Dropped:
			rep.Dropped[r.Reason]++
		default:
			rep.Failed++
		}
	}
	rep.Elapsed = time.Since(start)
	rep.AchievedRate = rateOver(rep.Sent, rep.Elapsed, o.Duration)
	return rep, nil
}
