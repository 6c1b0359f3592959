package vlp_test

import (
	"testing"

	"github.com/varta-go/varta/pkg/vlp"
)

var benchFrame = vlp.Frame{Status: vlp.StatusDegraded, Pid: 12345, Timestamp: 1234567890, Nonce: 100, Payload: 0xdeadbeef}

func BenchmarkEncode(b *testing.B) {
	f := benchFrame
	var out [vlp.FrameSize]byte
	b.ReportAllocs()
	b.SetBytes(vlp.FrameSize)
	for b.Loop() {
		f.Encode(&out)
	}
}

func BenchmarkDecode(b *testing.B) {
	wire := benchFrame.Marshal()
	var f vlp.Frame
	b.ReportAllocs()
	b.SetBytes(vlp.FrameSize)
	for b.Loop() {
		if err := vlp.Decode(wire[:], &f); err != nil {
			b.Fatal(err)
		}
	}
}

// TestZeroAllocs pins the hot-path promise: encoding into a frame buffer
// and a successful decode never allocate. The buffers live outside the
// measured function, as a sender's or listener's long-lived buffers do:
// hash/crc32 dispatches through a function variable, so escape analysis
// moves a buffer passed to Encode or Decode to the heap once where it is
// declared (which is also why Marshal, returning a fresh array, is not on
// this list).
func TestZeroAllocs(t *testing.T) {
	var out [vlp.FrameSize]byte
	wire := benchFrame.Marshal()
	termFrame := vlp.Frame{Status: vlp.StatusCritical, Pid: 2, Timestamp: 999, Nonce: vlp.NonceTerminal}
	term := termFrame.Marshal()
	badMagic := wire
	badMagic[0] = 0
	var f vlp.Frame
	tests := []struct {
		name string
		fn   func()
	}{
		{"Encode", func() { benchFrame.Encode(&out) }},
		{"Decode", func() {
			if err := vlp.Decode(wire[:], &f); err != nil {
				t.Fatal(err)
			}
		}},
		{"Decode terminal", func() {
			if err := vlp.Decode(term[:], &f); err != nil {
				t.Fatal(err)
			}
		}},
		{"Decode BadMagic", func() {
			if vlp.Decode(badMagic[:], &f) == nil {
				t.Fatal("decoded a frame with a bad magic")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(200, tt.fn); n != 0 {
				t.Errorf("%s: %v allocs/op, want 0", tt.name, n)
			}
		})
	}
	if out != wire {
		t.Errorf("Encode wrote %x, want %x", out, wire)
	}
}

// BenchmarkMarshal: a frame built on the stack (the CRC is computed over
// a pooled buffer so the result does not escape).
func BenchmarkMarshal(b *testing.B) {
	f := benchFrame
	var sink byte
	b.ReportAllocs()
	for b.Loop() {
		f.Nonce++
		w := f.Marshal()
		sink ^= w[31]
	}
	_ = sink
}
