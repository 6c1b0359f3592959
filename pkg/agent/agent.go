package agent

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/pkg/vlp"
	"github.com/varta-go/varta/pkg/vlp/secure"
)

// sealerFactory builds the secure UDP sealer for a sender pid (the
// master-key mode derives a per-pid key; the shared-key mode ignores the
// pid).
type sealerFactory func(pid uint32) (*secure.Sealer, error)

// Agent sends beats to one observer. Create it with Connect (or DialUnix,
// DialUDP); all methods are safe for concurrent use.
type Agent struct {
	mu sync.Mutex

	fd     int // connected socket; -1 once closed
	closed bool
	dial   dialer
	target string // observer address, for messages

	epoch time.Time    // Connect's reading of the clock (with its monotonic part)
	clock func() int64 // test hook replacing now; nil in use

	nonce      uint64    // next regular nonce
	lastTs     uint64    // highest timestamp of a sent frame
	lastTerm   uint64    // timestamp of the last terminal frame attempted
	termSent   bool      // a terminal frame was attempted
	pid        uint32    // pid last read (and the one the sealer was built for)
	pids       pidSource // pid of the calling process, without getpid while it has not forked
	consec     int       // consecutive drops
	reconnectN int       // reconnect after this many consecutive drops; 0 = never

	lazyRetry int64 // lazy: ns between connection attempts while unconnected
	lastDial  int64 // lazy: clock reading of the last attempt

	newSealer sealerFactory  // nil for plain transports
	sealer    *secure.Sealer // nil for plain transports

	plain [vlp.FrameSize]byte
	wire  [secure.MaxFrameSize]byte

	sent        atomic.Uint64
	terminals   atomic.Uint64
	drops       [NumDropReasons]atomic.Uint64
	failed      atomic.Uint64
	refused     atomic.Uint64
	reconnects  atomic.Uint64
	reconnFails atomic.Uint64
	regressions atomic.Uint64
}

// Stats is a snapshot of an Agent's counters.
type Stats struct {
	// Sent counts datagrams the kernel accepted (regular and terminal).
	Sent uint64
	// TerminalSent counts the terminal frames among Sent.
	TerminalSent uint64
	// Dropped counts drops, indexed by DropReason (index NoDrop is 0).
	Dropped [NumDropReasons]uint64
	// Failed counts sends that failed with an errno that is not a drop.
	Failed uint64
	// Refused counts beats refused locally (Stall or an undefined status).
	Refused uint64
	// Reconnects counts successful reconnects.
	Reconnects uint64
	// ReconnectFailures counts reconnect attempts that did not connect.
	ReconnectFailures uint64
	// ClockRegressions counts monotonic clock readings below the last sent
	// timestamp (the timestamp is held instead of going backwards).
	ClockRegressions uint64
}

// TotalDropped is the sum of Dropped over all reasons.
func (s Stats) TotalDropped() uint64 {
	var n uint64
	for _, d := range s.Dropped {
		n += d
	}
	return n
}

// Connect validates opts and connects to the observer. For a Unix socket, a
// missing observer yields an error wrapping ErrNoObserver, unless
// opts.Lazy: then the Agent starts unconnected and connects from Beat
// once the observer is there (see Options.Lazy).
func Connect(opts Options) (*Agent, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	a := &Agent{fd: -1, nonce: 1, reconnectN: opts.ReconnectAfter}
	switch {
	case opts.SocketPath != "":
		a.target = "unix:" + opts.SocketPath
		a.dial = unixDialer(opts.SocketPath)
	default:
		sa, family, err := udpSockaddr(opts.UDPAddr)
		if err != nil {
			return nil, err
		}
		a.target = "udp:" + opts.UDPAddr
		a.dial = udpDialer(opts.UDPAddr, sa, family)
		a.newSealer = opts.sealerFactory()
		switch {
		case opts.SharedKey != nil:
			a.target = "udp+shared-key:" + opts.UDPAddr
		case opts.MasterKey != nil:
			a.target = "udp+master-key:" + opts.UDPAddr
		}
	}
	fd, err := a.dial()
	switch {
	case err == nil:
	case opts.Lazy && errors.Is(err, ErrNoObserver):
		fd = -1 // start unconnected; sendLocked retries
	default:
		return nil, err
	}
	a.fd = fd
	a.pids = newPidSource(a)
	a.pid = a.pids.read(0)
	if a.newSealer != nil {
		s, err := a.newSealer(a.pid)
		if err != nil {
			if fd >= 0 {
				unix.Close(fd)
			}
			return nil, fmt.Errorf("agent: set up secure UDP: %w", err)
		}
		a.sealer = s
	}
	if opts.Lazy {
		a.lazyRetry = int64(opts.LazyRetry)
		if a.lazyRetry == 0 {
			a.lazyRetry = int64(time.Second)
		}
	}
	a.epoch = time.Now()
	return a, nil
}

// DialUnix connects to the observer's Unix datagram socket at path.
func DialUnix(path string) (*Agent, error) { return Connect(Options{SocketPath: path}) }

// DialUDP connects to an observer's plain UDP listener at host:port.
func DialUDP(addr string) (*Agent, error) { return Connect(Options{UDPAddr: addr}) }

// String names the observer the Agent sends to, e.g. "unix:/run/varta/varta.sock".
func (a *Agent) String() string { return a.target }

// SetReconnectAfter makes the Agent reconnect after n consecutive drops and
// retry the same frame once on the new socket (and again after every further
// n drops while the observer stays away). n <= 0 disables reconnecting.
func (a *Agent) SetReconnectAfter(n int) {
	if n < 0 {
		n = 0
	}
	a.mu.Lock()
	a.reconnectN = n
	a.mu.Unlock()
}

// Beat sends one beat with status and payload. It never blocks, never
// allocates and is safe for concurrent use. StatusStall (and any undefined
// status) is refused locally: the Result is Failed with ErrStallRefused
// (ErrBadStatus) and nothing is sent. A dropped beat leaves the nonce where
// it was, so the next beat re-sends it.
func (a *Agent) Beat(status vlp.Status, payload uint32) Result {
	if status > vlp.StatusCritical {
		a.refused.Add(1)
		if status == vlp.StatusStall {
			return Result{Outcome: Failed, err: ErrStallRefused}
		}
		return Result{Outcome: Failed, err: ErrBadStatus}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	f := vlp.Frame{Status: status, Pid: a.pids.read(a.pid), Timestamp: a.timestampLocked(), Nonce: a.nonce, Payload: payload}
	r := a.sendLocked(&f)
	if r.Outcome == Sent {
		if a.nonce == vlp.NonceWrapFrom {
			a.nonce = 0
		} else {
			a.nonce++
		}
	}
	return r
}

// Terminal sends the terminal (dying-gasp) frame: status Critical, nonce
// vlp.NonceTerminal, payload 0, and a timestamp strictly greater than that of
// any terminal frame this Agent sent or tried to send before. It does not
// close the Agent and does not touch the regular nonce.
func (a *Agent) Terminal() Result {
	a.mu.Lock()
	defer a.mu.Unlock()
	pid := a.pids.read(a.pid)
	ts := a.timestampLocked()
	if a.termSent && ts <= a.lastTerm {
		ts = a.lastTerm + 1
	}
	a.lastTerm, a.termSent = ts, true
	f := vlp.Frame{Status: vlp.StatusCritical, Pid: pid, Timestamp: ts, Nonce: vlp.NonceTerminal}
	r := a.sendLocked(&f)
	if r.Outcome == Sent {
		a.terminals.Add(1)
	}
	return r
}

// Reconnect replaces the socket with a newly connected one (and, for secure
// UDP, draws a fresh salt). On error the old socket stays in place.
func (a *Agent) Reconnect() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return ErrClosed
	}
	return a.reconnectLocked()
}

// Close closes the socket. Later beats fail with ErrClosed.
func (a *Agent) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	fd := a.fd
	a.fd = -1
	if fd < 0 {
		return nil // a lazy Agent that never connected
	}
	if err := unix.Close(fd); err != nil {
		return fmt.Errorf("agent: close socket: %w", err)
	}
	return nil
}

// Connected reports whether the Agent has a connected socket. Only a lazy
// Agent (Options.Lazy) whose observer was not up yet, or a closed one, is
// unconnected.
func (a *Agent) Connected() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.fd >= 0
}

// Stats returns a snapshot of the counters. It may be called at any time
// from any goroutine.
func (a *Agent) Stats() Stats {
	s := Stats{
		Sent:              a.sent.Load(),
		TerminalSent:      a.terminals.Load(),
		Failed:            a.failed.Load(),
		Refused:           a.refused.Load(),
		Reconnects:        a.reconnects.Load(),
		ReconnectFailures: a.reconnFails.Load(),
		ClockRegressions:  a.regressions.Load(),
	}
	for i := range s.Dropped {
		s.Dropped[i] = a.drops[i].Load()
	}
	return s
}

// now returns the ns since connect on the monotonic clock.
func (a *Agent) now() int64 {
	if a.clock != nil {
		return a.clock()
	}
	return int64(time.Since(a.epoch))
}

// timestampLocked reads the clock and holds it at the last sent timestamp
// if it went backwards.
func (a *Agent) timestampLocked() uint64 {
	ns := a.now()
	var ts uint64
	if ns > 0 {
		ts = uint64(ns)
	}
	if ts < a.lastTs {
		a.regressions.Add(1)
		ts = a.lastTs
	}
	if ts >= vlp.TimestampInvalid {
		ts = vlp.TimestampInvalid - 1
	}
	return ts
}

// sendLocked encodes f (whose Pid the caller read for this very frame) and
// sends it, reconnecting and retrying once when the run of drops reaches the
// reconnect threshold.
func (a *Agent) sendLocked(f *vlp.Frame) Result {
	if a.closed {
		a.failed.Add(1)
		return Result{Outcome: Failed, err: ErrClosed, Nonce: f.Nonce}
	}
	if f.Pid != a.pid {
		// A forked child: it must not reuse the parent's secure session.
		a.pid = f.Pid
		if a.newSealer != nil {
			if s, err := a.newSealer(f.Pid); err == nil {
				a.sealer = s
			} else {
				a.failed.Add(1)
				return Result{Outcome: Failed, err: err, Nonce: f.Nonce}
			}
		}
	}
	if a.fd < 0 {
		// A lazy Agent whose observer was not up yet: try to connect at
		// most once per lazyRetry, else the beat is a NoObserver drop.
		if now := a.now(); now-a.lastDial >= a.lazyRetry {
			a.lastDial = now
			_ = a.reconnectLocked() // the outcome is counted in the stats
		}
		if a.fd < 0 {
			a.drops[NoObserver].Add(1)
			a.consec++
			return Result{Outcome: Dropped, Reason: NoObserver, Nonce: f.Nonce}
		}
	}
	f.Encode(&a.plain)
	r := a.writeLocked()
	if r.Outcome == Dropped {
		a.drops[r.Reason].Add(1)
		a.consec++
		if a.reconnectN > 0 && a.consec%a.reconnectN == 0 {
			if a.reconnectLocked() == nil {
				r = a.writeLocked()
				if r.Outcome == Dropped {
					a.drops[r.Reason].Add(1)
				}
			}
		}
	}
	r.Nonce = f.Nonce
	switch r.Outcome {
	case Sent:
		a.consec = 0
		a.sent.Add(1)
		if f.Timestamp > a.lastTs {
			a.lastTs = f.Timestamp
		}
	case Failed:
		a.failed.Add(1)
	}
	return r
}

// writeLocked seals (for secure UDP) and writes the encoded frame, and
// commits the IV counter when the kernel accepted it.
func (a *Agent) writeLocked() Result {
	buf := a.plain[:]
	if a.sealer != nil {
		n := a.sealer.Seal(a.wire[:], &a.plain)
		buf = a.wire[:n]
	}
	for {
		errno := rawWrite(a.fd, buf)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return classifyErrno(errno)
		}
		break
	}
	if a.sealer != nil {
		a.sealer.Commit()
	}
	return Result{Outcome: Sent}
}

// reconnectLocked dials a new socket and swaps it in; the secure session
// gets a fresh salt.
func (a *Agent) reconnectLocked() error {
	fd, err := a.dial()
	if err != nil {
		a.reconnFails.Add(1)
		return fmt.Errorf("agent: reconnect: %w", err)
	}
	if a.sealer != nil {
		if err := a.sealer.Reset(); err != nil {
			unix.Close(fd)
			a.reconnFails.Add(1)
			return fmt.Errorf("agent: reconnect: fresh salt: %w", err)
		}
	}
	old := a.fd
	a.fd = fd
	if old >= 0 {
		unix.Close(old)
	}
	a.reconnects.Add(1)
	return nil
}
