package vlp

import (
	"reflect"
	"testing"
)

// TestMarshalAndValidateDoNotAllocate: both work on stack values.
func TestMarshalAndValidateDoNotAllocate(t *testing.T) {
	f := Frame{Status: StatusDegraded, Pid: 4242, Timestamp: 7, Nonce: 9, Payload: 3}
	var sink byte
	if a := testing.AllocsPerRun(1000, func() {
		b := f.Marshal()
		sink ^= b[31]
	}); a != 0 {
		t.Fatalf("Marshal: %v allocs", a)
	}
	if a := testing.AllocsPerRun(1000, func() {
		if f.Validate() != nil {
			t.Fatal("valid frame refused")
		}
	}); a != 0 {
		t.Fatalf("Validate: %v allocs", a)
	}
	_ = sink
}

// TestMarshalMatchesEncodeAndValidateMatchesDecode pins the two
// shortcuts to the reference paths over a table of frames.
func TestMarshalMatchesEncodeAndValidateMatchesDecode(t *testing.T) {
	frames := []Frame{
		{Pid: 2, Nonce: 1},
		{Status: StatusCritical, Pid: 2, Timestamp: 999, Nonce: NonceTerminal},
		{Status: StatusStall, Pid: 5, Nonce: 1},
		{Status: Status(9), Pid: 5, Nonce: 1},
		{Pid: 1, Nonce: 1},
		{Pid: 0, Timestamp: TimestampInvalid},
		{Pid: 7, Timestamp: TimestampInvalid, Nonce: NonceTerminal},
		{Status: StatusDegraded, Pid: 7, Nonce: NonceTerminal},
		{Status: StatusOk, Pid: 0xFFFFFFFF, Timestamp: 1 << 62, Nonce: NonceWrapFrom, Payload: 0xDEADBEEF},
	}
	for _, f := range frames {
		var enc [FrameSize]byte
		f.Encode(&enc)
		if m := f.Marshal(); m != enc {
			t.Fatalf("%+v: Marshal %x, Encode %x", f, m, enc)
		}
		var g Frame
		want := Decode(enc[:], &g)
		got := f.Validate()
		// Same type, same fields (the text alone would not tell the
		// types apart).
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%+v: Validate %v, Decode %v", f, got, want)
		}
	}
}
