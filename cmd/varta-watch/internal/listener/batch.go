package listener

import (
	"net/netip"
	"time"
)

// epoch anchors Now.
var epoch = time.Now()

// Now reads the listeners' clock (monotonic nanoseconds), the clock of
// Settled.
func Now() int64 { return int64(time.Since(epoch)) }

// BufSize is the receive buffer per datagram: large enough for every valid
// VLP datagram (32, 60, 64 bytes) so that any other size is seen as such.
const BufSize = 96

// BatchSize is how many datagrams one receive call may return.
const BatchSize = 64

// maxFDs is how many SCM_RIGHTS descriptors a control buffer has room for;
// the kernel closes any that do not fit and sets MSG_CTRUNC.
const maxFDs = 8

// Datagram is one received datagram. Data aliases the batch buffer and is
// valid until the next Read into the same batch.
type Datagram struct {
	Data []byte
	// Len is the datagram's real length (may exceed len(Data) when
	// Truncated).
	Len int
	// Truncated reports a datagram larger than BufSize.
	Truncated bool
	// CtrlTruncated reports MSG_CTRUNC: the control message did not fit.
	CtrlTruncated bool
	// HasCreds reports that SCM_CREDENTIALS were present.
	HasCreds bool
	Pid      int32
	Uid      uint32
	Gid      uint32
	// FDs counts SCM_RIGHTS descriptors received (and already closed).
	FDs int
	// From is the source address and port of a UDP datagram.
	From netip.AddrPort
	// Arrival is when the kernel queued the datagram (SO_TIMESTAMPNS,
	// CLOCK_REALTIME nanoseconds), or 0 where unknown.
	Arrival int64
}

// Batch holds the buffers for one receive call. It is allocated once per
// listener goroutine and reused.
type Batch struct {
	D    [BatchSize]Datagram
	bufs [BatchSize][BufSize]byte
	sys  batchSys
}

// NewBatch allocates a batch.
func NewBatch() *Batch {
	b := &Batch{}
	b.init()
	return b
}
