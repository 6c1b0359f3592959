package listener

import (
	"fmt"
	"time"
)

// MaxDrainInterval bounds --drain-interval-ms: beats reach the tracker
// and the events file at most this much later than they arrived.
const MaxDrainInterval = time.Second

// minPause is the shortest pause worth a timer: below it the receiving
// goroutine waits for readiness instead (today's behaviour).
const minPause = time.Millisecond

// lowRateBatch is the most datagrams a drain may have read for the
// receiver to pause after it: one receive batch per interval. Above it
// the rate is not low (reads on readiness batch by themselves), and the
// queue's true capacity may be smaller than the estimate: a Unix
// datagram socket also holds at most about 270 datagrams of any one
// sender (its send buffer), so a bulk sender would otherwise be paced to
// that many per interval.
const lowRateBatch = BatchSize

// UDPDatagramCost is the receive-buffer space one small datagram is
// assumed to take on a UDP socket (the kernel charges the buffer's
// true size, not the 32 to 64 payload bytes): it turns the granted
// SO_RCVBUF into a queue capacity in datagrams for the Pacer.
const UDPDatagramCost = 2048

// Pacer coalesces the reads of one listener at low rates
// (--drain-interval-ms, docs/observer.md "Drain interval"). After a read
// that emptied the socket the receiving goroutine pauses until the next
// drain, up to the interval, instead of waking for every datagram; the
// kernel's arrival time of each datagram (SO_TIMESTAMPNS) keeps the beat
// times exact. The pause is shortened so that, at the rate the last
// drain saw, at most one receive batch and at most a quarter of the
// queue accumulate meanwhile (a Unix
// datagram socket queues only net.unix.max_dgram_qlen + 1 datagrams, after
// which senders get EAGAIN); below minPause, or when the last drain read
// more than one batch (lowRateBatch), the goroutine waits for readiness as
// with no interval. Kick ends a pause at once: the control
// loop drains every socket before it decides a stall.
//
// On Linux the pause is a timerfd waited on through the runtime's poller:
// it wakes the one thread that waits in the poller and nothing else (a
// runtime timer would also wake the scheduler's monitor thread and hand
// the goroutine to a second thread).
//
// After is called by the receiving goroutine only; Kick from any
// goroutine. A nil Pacer or a zero interval never pauses.
type Pacer struct {
	interval time.Duration
	capacity int // datagrams the queue holds; 0 = unknown (no shortening)
	w        *waiter
	read     int       // datagrams read since the last pause began
	since    time.Time // when the last pause began
}

// NewPacer returns a pacer for a listener whose queue holds capacity
// datagrams (0 = unknown). interval 0 disables pausing.
func NewPacer(interval time.Duration, capacity int) (*Pacer, error) {
	p := &Pacer{interval: interval, capacity: capacity}
	if interval > 0 {
		w, err := newWaiter()
		if err != nil {
			return nil, fmt.Errorf("drain interval: %w", err)
		}
		p.w = w
	}
	return p, nil
}

// Interval returns the drain interval (0 = off).
func (p *Pacer) Interval() time.Duration {
	if p == nil {
		return 0
	}
	return p.interval
}

// pauseFor is how long to pause after a read that emptied the socket,
// when read datagrams arrived during elapsed: the interval, shortened so
// that at that rate at most one batch (lowRateBatch) and at most a
// quarter of a queue of capacity datagrams accumulate; 0 = do not pause.
func pauseFor(interval time.Duration, capacity, read int, elapsed time.Duration) time.Duration {
	if read > lowRateBatch {
		// Not a low rate: read on readiness, which batches by itself.
		return 0
	}
	d := interval
	if read > 0 {
		// At the rate the last drain saw, let at most one batch, and at
		// most a quarter of the queue, accumulate during the pause. In
		// floating point: elapsed × room overflows an int64 for a long
		// idle spell (the first read ever, since the zero time).
		if elapsed < 0 {
			elapsed = 0
		}
		room := float64(lowRateBatch)
		if capacity > 0 {
			room = min(room, float64(capacity)/4)
		}
		if lim := float64(elapsed) * room / float64(read); lim < float64(d) {
			d = time.Duration(lim)
		}
	}
	if d < minPause {
		return 0
	}
	return d
}

// After is told that a read returned n datagrams, already handed on. If
// the read emptied the socket (n below BatchSize) it pauses until the
// next drain (see Pacer) or a Kick.
func (p *Pacer) After(n int) {
	if p == nil || p.w == nil {
		return
	}
	p.read += n
	if n >= BatchSize {
		return // more may be queued: read on
	}
	now := time.Now()
	d := pauseFor(p.interval, p.capacity, p.read, now.Sub(p.since))
	p.read, p.since = 0, now
	if d > 0 {
		p.w.pause(d)
	}
}

// Kick ends the current pause, or makes the next one end at once.
func (p *Pacer) Kick() {
	if p != nil && p.w != nil {
		p.w.kick()
	}
}

// Close releases the pacer's timer; a pause in progress ends.
func (p *Pacer) Close() {
	if p != nil && p.w != nil {
		p.w.close()
	}
}
