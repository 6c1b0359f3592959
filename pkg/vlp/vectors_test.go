package vlp_test

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/varta-go/varta/pkg/vlp"
)

// vectorsPath is the repository's copy of the conformance vectors (see
// TestVectorCopiesMatchUpstream for how it is kept identical to the
// reference copy).
var vectorsPath = filepath.Join("testdata", "vlp-test-vectors.json")

type vectorFile struct {
	SpecVersion string         `json:"spec_version"`
	CRC32C      []crcVector    `json:"crc32c_vectors"`
	Frames      []frameVector  `json:"frame_vectors"`
	Secure      []secureVector `json:"secure_frame_vectors"`
}

type crcVector struct {
	ID          string `json:"id"`
	InputHex    string `json:"input_hex"`
	ExpectedHex string `json:"expected_crc_hex"`
}

type frameVector struct {
	ID                  string  `json:"id"`
	Kind                string  `json:"kind"`
	ExpectedDecodeError *string `json:"expected_decode_error"`
	Inputs              *struct {
		Status    string `json:"status"`
		Pid       uint32 `json:"pid"`
		Timestamp uint64 `json:"timestamp"`
		Nonce     uint64 `json:"nonce"`
		Payload   uint32 `json:"payload"`
	} `json:"inputs"`
	ExpectedWireHex string `json:"expected_wire_hex"`
	WireHex         string `json:"wire_hex"`
}

// secureVector is only used here for its plaintext, which the fuzz corpus
// includes; pkg/vlp/secure tests the secure vectors themselves.
type secureVector struct {
	ID           string `json:"id"`
	PlaintextHex string `json:"plaintext_hex"`
}

// wire returns the frame bytes of v, whichever field carries them.
func (v *frameVector) wire(t testing.TB) []byte {
	t.Helper()
	h := v.ExpectedWireHex
	if h == "" {
		h = v.WireHex
	}
	return mustHex(t, h)
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// loadVectors reads the shared vectors file. A missing file is a failure, not
// a skip: conformance is part of the contract.
func loadVectors(t testing.TB) *vectorFile {
	t.Helper()
	data, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatalf("conformance vectors: %v", err)
	}
	var vf vectorFile
	if err := json.Unmarshal(data, &vf); err != nil {
		t.Fatalf("conformance vectors %s: %v", vectorsPath, err)
	}
	if vf.SpecVersion != "0.2" {
		t.Fatalf("conformance vectors: spec_version %q, want 0.2", vf.SpecVersion)
	}
	if len(vf.CRC32C) == 0 || len(vf.Frames) == 0 {
		t.Fatalf("conformance vectors: %d crc and %d frame vectors, want some of each", len(vf.CRC32C), len(vf.Frames))
	}
	return &vf
}

func TestCRC32CVectors(t *testing.T) {
	vf := loadVectors(t)
	for _, v := range vf.CRC32C {
		t.Run(v.ID, func(t *testing.T) {
			in := mustHex(t, v.InputHex)
			want := mustHex(t, v.ExpectedHex) // big-endian numeric value
			if len(want) != 4 {
				t.Fatalf("expected_crc_hex %q is not 4 bytes", v.ExpectedHex)
			}
			w := uint32(want[0])<<24 | uint32(want[1])<<16 | uint32(want[2])<<8 | uint32(want[3])
			if got := vlp.Checksum(in); got != w {
				t.Errorf("Checksum(%x) = %08x, want %08x", in, got, w)
			}
		})
	}
}

// errorTypeMatches reports whether err is (via errors.As) the concrete error
// type the vectors name.
func errorTypeMatches(err error, name string) bool {
	switch name {
	case "BadMagic":
		var e *vlp.BadMagicError
		return errors.As(err, &e) && errors.Is(err, vlp.ErrBadMagic)
	case "BadVersion":
		var e *vlp.BadVersionError
		return errors.As(err, &e) && errors.Is(err, vlp.ErrBadVersion)
	case "BadCrc":
		var e *vlp.BadCrcError
		return errors.As(err, &e)
	case "BadStatus":
		var e *vlp.BadStatusError
		return errors.As(err, &e)
	case "StallOnWire":
		var e *vlp.StallOnWireError
		return errors.As(err, &e) && errors.Is(err, vlp.ErrStallOnWire)
	case "BadPid":
		var e *vlp.BadPidError
		return errors.As(err, &e)
	case "BadTimestamp":
		var e *vlp.BadTimestampError
		return errors.As(err, &e)
	case "BadNonce":
		var e *vlp.BadNonceError
		return errors.As(err, &e)
	}
	return false
}

// labelOf maps the vectors' error names to metric labels.
var labelOf = map[string]string{
	"BadMagic":     "bad_magic",
	"BadVersion":   "bad_version",
	"BadCrc":       "bad_crc",
	"BadStatus":    "bad_status",
	"StallOnWire":  "stall_on_wire",
	"BadPid":       "bad_pid",
	"BadTimestamp": "bad_timestamp",
	"BadNonce":     "bad_nonce",
}

func TestFrameVectors(t *testing.T) {
	vf := loadVectors(t)
	seenKinds := map[string]int{}
	for _, v := range vf.Frames {
		seenKinds[v.Kind]++
		t.Run(v.ID, func(t *testing.T) {
			switch v.Kind {
			case "encode_decode_roundtrip":
				checkRoundTrip(t, &v)
			case "decode_error":
				checkDecodeError(t, &v)
			default:
				t.Fatalf("unknown vector kind %q", v.Kind)
			}
		})
	}
	if seenKinds["encode_decode_roundtrip"] == 0 || seenKinds["decode_error"] == 0 {
		t.Errorf("vector kinds seen: %v, want both round-trip and decode-error vectors", seenKinds)
	}
}

func checkRoundTrip(t *testing.T, v *frameVector) {
	t.Helper()
	if v.Inputs == nil || v.ExpectedDecodeError != nil {
		t.Fatalf("round-trip vector without inputs or with an expected error")
	}
	st, ok := vlp.ParseStatus(v.Inputs.Status)
	if !ok {
		t.Fatalf("unknown status %q", v.Inputs.Status)
	}
	f := vlp.Frame{
		Status:    st,
		Pid:       v.Inputs.Pid,
		Timestamp: v.Inputs.Timestamp,
		Nonce:     v.Inputs.Nonce,
		Payload:   v.Inputs.Payload,
	}
	want := v.wire(t)

	var enc [vlp.FrameSize]byte
	f.Encode(&enc)
	if string(enc[:]) != string(want) {
		t.Errorf("Encode:\n got %x\nwant %x", enc, want)
	}
	if m := f.Marshal(); m != enc {
		t.Errorf("Marshal = %x, Encode = %x", m, enc)
	}
	if err := f.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}

	var got vlp.Frame
	if err := vlp.Decode(want, &got); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if got != f {
		t.Errorf("Decode = %+v, want %+v", got, f)
	}
	if term := f.Status == vlp.StatusCritical && f.Nonce == vlp.NonceTerminal; got.IsTerminal() != term {
		t.Errorf("IsTerminal = %v, want %v", got.IsTerminal(), term)
	}
}

func checkDecodeError(t *testing.T, v *frameVector) {
	t.Helper()
	if v.ExpectedDecodeError == nil {
		t.Fatalf("decode-error vector without expected_decode_error")
	}
	name := *v.ExpectedDecodeError
	wantLabel, ok := labelOf[name]
	if !ok {
		t.Fatalf("unknown error name %q", name)
	}
	wire := v.wire(t)
	var f vlp.Frame
	err := vlp.Decode(wire, &f)
	if err == nil {
		t.Fatalf("Decode(%x) succeeded, want %s", wire, name)
	}
	var de vlp.DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("Decode error %T (%v) is not a vlp.DecodeError", err, err)
	}
	if de.Label() != wantLabel {
		t.Errorf("Label() = %q, want %q (error %v)", de.Label(), wantLabel, err)
	}
	if de.Kind().Label() != wantLabel {
		t.Errorf("Kind().Label() = %q, want %q", de.Kind().Label(), wantLabel)
	}
	if !errorTypeMatches(err, name) {
		t.Errorf("errors.As: %T is not the %s error type", err, name)
	}
	if !strings.HasPrefix(err.Error(), name) {
		t.Errorf("Error() = %q, want it to start with %q", err.Error(), name)
	}
	if f != (vlp.Frame{}) {
		t.Errorf("failed Decode wrote to the frame: %+v", f)
	}
}
