package vlp_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/varta-go/varta/pkg/vlp"
)

// wireOf encodes f, applies mutate to the wire bytes and, when fixCRC is
// set, recomputes the CRC over the mutated bytes.
func wireOf(f vlp.Frame, fixCRC bool, mutate func(b *[vlp.FrameSize]byte)) []byte {
	var b [vlp.FrameSize]byte
	f.Encode(&b)
	if mutate != nil {
		mutate(&b)
	}
	if fixCRC {
		binary.LittleEndian.PutUint32(b[28:], vlp.Checksum(b[:28]))
	}
	return b[:]
}

var okFrame = vlp.Frame{Status: vlp.StatusOk, Pid: 4242, Timestamp: 1000, Nonce: 7, Payload: 9}

// TestDecodePrecedence covers the precedence cases docs/vlp.md §3 lists outside
// the JSON vectors, plus a few neighbours: when several checks fail, the
// first in normative order wins.
func TestDecodePrecedence(t *testing.T) {
	tests := []struct {
		name   string
		wire   []byte
		want   vlp.Kind
		detail string // exact Error() text
	}{
		{
			name: "bad magic and bad crc",
			wire: wireOf(okFrame, false, func(b *[32]byte) { b[0] = 'X'; b[28] ^= 0xff }),
			want: vlp.KindBadMagic, detail: "BadMagic",
		},
		{
			name: "second magic byte wrong, everything else valid",
			wire: wireOf(okFrame, true, func(b *[32]byte) { b[1] = 'B' }),
			want: vlp.KindBadMagic, detail: "BadMagic",
		},
		{
			name: "version 1 and bad crc",
			wire: wireOf(okFrame, false, func(b *[32]byte) { b[2] = 1; b[29] ^= 0x01 }),
			want: vlp.KindBadVersion, detail: "BadVersion",
		},
		{
			name: "version 1 with valid crc is rejected, not reinterpreted",
			wire: wireOf(okFrame, true, func(b *[32]byte) { b[2] = 1 }),
			want: vlp.KindBadVersion, detail: "BadVersion",
		},
		{
			name: "status 3 with pid 1 and valid crc",
			wire: wireOf(vlp.Frame{Status: vlp.StatusStall, Pid: 1, Timestamp: 5, Nonce: 1}, true, nil),
			want: vlp.KindStallOnWire, detail: "StallOnWire",
		},
		{
			name: "flipped status bit with the old crc",
			wire: wireOf(okFrame, false, func(b *[32]byte) { b[3] ^= 0x01 }),
			want: vlp.KindBadCrc,
		},
		{
			name: "pid 0 with timestamp max",
			wire: wireOf(vlp.Frame{Pid: 0, Timestamp: vlp.TimestampInvalid, Nonce: 1}, true, nil),
			want: vlp.KindBadPid, detail: "BadPid(0)",
		},
		{
			name: "timestamp max with nonce max and status ok",
			wire: wireOf(vlp.Frame{Status: vlp.StatusOk, Pid: 2, Timestamp: vlp.TimestampInvalid, Nonce: vlp.NonceTerminal}, true, nil),
			want: vlp.KindBadTimestamp, detail: "BadTimestamp(18446744073709551615)",
		},
		{
			name: "bad status beats stall, pid and nonce checks",
			wire: wireOf(vlp.Frame{Status: 200, Pid: 0, Timestamp: vlp.TimestampInvalid, Nonce: vlp.NonceTerminal}, true, nil),
			want: vlp.KindBadStatus, detail: "BadStatus(200)",
		},
		{
			name: "terminal nonce with degraded status",
			wire: wireOf(vlp.Frame{Status: vlp.StatusDegraded, Pid: 2, Timestamp: 1, Nonce: vlp.NonceTerminal}, true, nil),
			want: vlp.KindBadNonce, detail: "BadNonce { nonce: 18446744073709551615, status: Degraded }",
		},
		{
			name: "terminal nonce with ok status",
			wire: wireOf(vlp.Frame{Status: vlp.StatusOk, Pid: 3, Timestamp: 1, Nonce: vlp.NonceTerminal}, true, nil),
			want: vlp.KindBadNonce, detail: "BadNonce { nonce: 18446744073709551615, status: Ok }",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f vlp.Frame
			err := vlp.Decode(tt.wire, &f)
			var de vlp.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode(%x) = %v, want a %s DecodeError", tt.wire, err, tt.want.Label())
			}
			if de.Kind() != tt.want {
				t.Errorf("Decode(%x) = %v (%s), want %s", tt.wire, err, de.Label(), tt.want.Label())
			}
			if tt.detail != "" && err.Error() != tt.detail {
				t.Errorf("Error() = %q, want %q", err.Error(), tt.detail)
			}
		})
	}
}

// TestBadCrcFields checks that BadCrc reports the computed CRC as expected
// and the stored one as actual, in decimal.
func TestBadCrcFields(t *testing.T) {
	good := wireOf(okFrame, false, nil)
	computed := binary.LittleEndian.Uint32(good[28:])
	bad := wireOf(okFrame, false, func(b *[32]byte) { binary.LittleEndian.PutUint32(b[28:], 12345) })
	var f vlp.Frame
	err := vlp.Decode(bad, &f)
	var ce *vlp.BadCrcError
	if !errors.As(err, &ce) {
		t.Fatalf("Decode = %v, want *BadCrcError", err)
	}
	if ce.Expected != computed || ce.Actual != 12345 {
		t.Errorf("BadCrcError = %+v, want Expected %d Actual 12345", *ce, computed)
	}
	want := "BadCrc { expected: " + uitoa(uint64(computed)) + ", actual: 12345 }"
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}

func uitoa(v uint64) string {
	if v == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b[i:])
}

func TestErrorFieldValues(t *testing.T) {
	tests := []struct {
		name  string
		wire  []byte
		check func(t *testing.T, err error)
	}{
		{
			name: "BadStatus carries the byte",
			wire: wireOf(okFrame, true, func(b *[32]byte) { b[3] = 0x7f }),
			check: func(t *testing.T, err error) {
				var e *vlp.BadStatusError
				if !errors.As(err, &e) || e.Status != 0x7f {
					t.Errorf("got %v, want BadStatus(127)", err)
				}
			},
		},
		{
			name: "BadPid carries the pid",
			wire: wireOf(vlp.Frame{Pid: 1, Nonce: 1}, true, nil),
			check: func(t *testing.T, err error) {
				var e *vlp.BadPidError
				if !errors.As(err, &e) || e.Pid != 1 || err.Error() != "BadPid(1)" {
					t.Errorf("got %v, want BadPid(1)", err)
				}
			},
		},
		{
			name: "BadNonce carries nonce and status",
			wire: wireOf(vlp.Frame{Status: vlp.StatusDegraded, Pid: 9, Nonce: vlp.NonceTerminal}, true, nil),
			check: func(t *testing.T, err error) {
				var e *vlp.BadNonceError
				if !errors.As(err, &e) || e.Nonce != vlp.NonceTerminal || e.Status != vlp.StatusDegraded {
					t.Errorf("got %v, want BadNonce with terminal nonce and Degraded", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f vlp.Frame
			tt.check(t, vlp.Decode(tt.wire, &f))
		})
	}
}

func TestDecodeSize(t *testing.T) {
	valid := wireOf(okFrame, false, nil)
	tests := []struct {
		name string
		in   []byte
	}{
		{"nil", nil},
		{"0 bytes", []byte{}},
		{"31 bytes", valid[:31]},
		{"33 bytes", append(append([]byte(nil), valid...), 0)},
		{"60 bytes (secure shared size)", make([]byte, 60)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f vlp.Frame
			err := vlp.Decode(tt.in, &f)
			var se *vlp.SizeError
			if !errors.As(err, &se) {
				t.Fatalf("Decode(%d bytes) = %v, want *SizeError", len(tt.in), err)
			}
			if se.Len != len(tt.in) {
				t.Errorf("SizeError.Len = %d, want %d", se.Len, len(tt.in))
			}
			var de vlp.DecodeError
			if errors.As(err, &de) {
				t.Errorf("SizeError must not be one of the eight decode errors, got label %q", de.Label())
			}
			want := "vlp: frame is " + uitoa(uint64(len(tt.in))) + " bytes, want exactly 32"
			if err.Error() != want {
				t.Errorf("Error() = %q, want %q", err.Error(), want)
			}
		})
	}
}

func TestKindLabels(t *testing.T) {
	want := []string{"bad_magic", "bad_version", "bad_crc", "bad_status", "stall_on_wire", "bad_pid", "bad_timestamp", "bad_nonce"}
	got := vlp.Labels()
	if len(got) != len(want) || int(vlp.NumKinds) != len(want) {
		t.Fatalf("Labels() = %v (NumKinds %d), want %v", got, vlp.NumKinds, want)
	}
	for i := range want {
		if got[i] != want[i] || vlp.Kind(i).Label() != want[i] {
			t.Errorf("kind %d: Labels()[i] = %q, Kind.Label() = %q, want %q", i, got[i], vlp.Kind(i).Label(), want[i])
		}
	}
	got[0] = "mutated"
	if vlp.Labels()[0] != "bad_magic" {
		t.Error("Labels() returned the package's own slice")
	}
	if vlp.NumKinds.Label() != "unknown" {
		t.Errorf("out-of-range Kind label = %q, want unknown", vlp.NumKinds.Label())
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		f       vlp.Frame
		wantErr bool
		kind    vlp.Kind
	}{
		{name: "ok frame", f: okFrame},
		{name: "operational critical", f: vlp.Frame{Status: vlp.StatusCritical, Pid: 2, Nonce: 5}},
		{name: "terminal", f: vlp.Frame{Status: vlp.StatusCritical, Pid: 2, Timestamp: 1, Nonce: vlp.NonceTerminal}},
		{name: "stall refused", f: vlp.Frame{Status: vlp.StatusStall, Pid: 2}, wantErr: true, kind: vlp.KindStallOnWire},
		{name: "pid 1 refused", f: vlp.Frame{Pid: 1}, wantErr: true, kind: vlp.KindBadPid},
		{name: "status 9 refused", f: vlp.Frame{Status: 9, Pid: 2}, wantErr: true, kind: vlp.KindBadStatus},
		{name: "terminal nonce with ok refused", f: vlp.Frame{Pid: 2, Nonce: vlp.NonceTerminal}, wantErr: true, kind: vlp.KindBadNonce},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.f.Validate()
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var de vlp.DecodeError
			if !errors.As(err, &de) || de.Kind() != tt.kind {
				t.Fatalf("Validate() = %v, want %s", err, tt.kind.Label())
			}
		})
	}
}

func TestStatusNames(t *testing.T) {
	for _, s := range []vlp.Status{vlp.StatusOk, vlp.StatusDegraded, vlp.StatusCritical} {
		got, ok := vlp.ParseStatus(s.String())
		if !ok || got != s {
			t.Errorf("ParseStatus(%q) = %v, %v; want %v", s.String(), got, ok, s)
		}
	}
	if _, ok := vlp.ParseStatus("stall"); ok {
		t.Error(`ParseStatus("stall") accepted; agents never send Stall`)
	}
	if vlp.StatusStall.String() != "stall" || vlp.Status(7).String() != "unknown" {
		t.Errorf("String: stall=%q 7=%q", vlp.StatusStall.String(), vlp.Status(7).String())
	}
}

func TestOriginRanks(t *testing.T) {
	tests := []struct {
		o        vlp.Origin
		name     string
		eligible bool
	}{
		{vlp.OriginNetworkUnverified, "NetworkUnverified", false},
		{vlp.OriginSocketModeOnly, "SocketModeOnly", false},
		{vlp.OriginOperatorAttestedTransport, "OperatorAttestedTransport", true},
		{vlp.OriginKernelAttested, "KernelAttested", true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if int(tt.o) != i {
				t.Errorf("rank = %d, want %d", tt.o, i)
			}
			if tt.o.String() != tt.name || tt.o.RecoveryEligible() != tt.eligible {
				t.Errorf("String/RecoveryEligible = %q/%v, want %q/%v", tt.o.String(), tt.o.RecoveryEligible(), tt.name, tt.eligible)
			}
		})
	}
}
