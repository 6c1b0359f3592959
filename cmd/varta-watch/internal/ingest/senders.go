package ingest

// Refused datagrams are charged to their sender: every refusal to the
// kernel's pid on the Unix socket (read from SCM_CREDENTIALS before
// anything is decoded), garbage only (size, decryption, decode) to the
// source address and port on UDP, where one source may carry many agents.
// Each sender that has been charged gets an allowance of SenderPenaltyBurst refused datagrams,
// refilled at SenderPenaltyRate per second; a sender whose allowance is
// spent is throttled: its datagrams are dropped on arrival, before the
// global bucket, the AEAD and the decoder (counted as
// varta_sender_throttled_total). A sender that never has a datagram
// refused — every honest agent — has no entry and pays nothing, so a flood
// costs its sender and never the pools the honest agents need.
//
// The table of charged senders is bounded (senderTableSize entries, all
// allocated up front); when it is full, a new offender takes the entry of
// the one that has recovered the most (scanning a few entries from a
// rotating hand), counted as varta_sender_throttle_evictions_total.

// Sender allowance.
const (
	// SenderPenaltyBurst is how many refused datagrams a sender may have
	// before it is throttled.
	SenderPenaltyBurst = 32
	// SenderPenaltyRate is how many refused datagrams per second a
	// throttled sender is allowed afterwards.
	SenderPenaltyRate = 4
	// senderTableSize bounds the number of charged senders per transport.
	senderTableSize = 1024
	// senderScan is how many entries an eviction looks at.
	senderScan = 8
)

// senderEntry is one charged sender.
type senderEntry[K comparable] struct {
	key    K
	tokens float64
	last   int64
	used   bool
}

// senderTable holds the charged senders of one transport. It belongs to
// that transport's receiving goroutine (no lock).
type senderTable[K comparable] struct {
	index     map[K]int32
	ents      []senderEntry[K]
	free      []int32
	hand      int
	evictions func() // counts an eviction
}

func newSenderTable[K comparable](evictions func()) *senderTable[K] {
	t := &senderTable[K]{
		index:     make(map[K]int32, senderTableSize),
		ents:      make([]senderEntry[K], senderTableSize),
		free:      make([]int32, senderTableSize),
		evictions: evictions,
	}
	for i := range t.free {
		t.free[i] = int32(senderTableSize - 1 - i)
	}
	return t
}

// refill brings e's allowance up to now.
func (e *senderEntry[K]) refill(now int64) {
	if now > e.last {
		e.tokens += float64(now-e.last) * SenderPenaltyRate / 1e9
		if e.tokens > SenderPenaltyBurst {
			e.tokens = SenderPenaltyBurst
		}
	}
	e.last = now
}

// throttled reports whether key's allowance is spent at now. A sender
// without an entry (no refusal so far) is never throttled; with an empty
// table this is one length check.
func (t *senderTable[K]) throttled(key K, now int64) bool {
	if len(t.index) == 0 {
		return false
	}
	i, ok := t.index[key]
	if !ok {
		return false
	}
	e := &t.ents[i]
	e.refill(now)
	return e.tokens < 1
}

// charge takes one refused datagram from key's allowance, opening an entry
// with a full allowance for a first offender.
func (t *senderTable[K]) charge(key K, now int64) {
	i, ok := t.index[key]
	if !ok {
		i = t.slot(now)
		t.ents[i] = senderEntry[K]{key: key, tokens: SenderPenaltyBurst, last: now, used: true}
		t.index[key] = i
	}
	e := &t.ents[i]
	e.refill(now)
	if e.tokens >= 1 {
		e.tokens--
	}
}

// slot returns a free entry, evicting the most recovered of a few entries
// when the table is full. An entry whose allowance is full again is freed
// first: its sender behaves.
func (t *senderTable[K]) slot(now int64) int32 {
	if n := len(t.free); n > 0 {
		i := t.free[n-1]
		t.free = t.free[:n-1]
		return i
	}
	best, bestTokens := int32(-1), -1.0
	for k := 0; k < senderScan; k++ {
		i := int32(t.hand)
		t.hand = (t.hand + 1) % len(t.ents)
		e := &t.ents[i]
		e.refill(now)
		if e.tokens > bestTokens {
			best, bestTokens = i, e.tokens
		}
	}
	if bestTokens < SenderPenaltyBurst {
		t.evictions()
	}
	delete(t.index, t.ents[best].key)
	t.ents[best] = senderEntry[K]{}
	return best
}

// len is the number of charged senders.
func (t *senderTable[K]) len() int { return len(t.index) }
