package secure

import (
	"encoding/binary"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/varta-go/varta/pkg/vlp"
)

// Wire sizes of the two secure frames.
const (
	// SharedFrameSize: iv_random[8] ‖ iv_counter[4] ‖ ciphertext[32] ‖ tag[16].
	SharedFrameSize = IVRandomSize + 4 + vlp.FrameSize + chacha20poly1305.Overhead
	// MasterFrameSize: agent_pid[4] ‖ iv_random[8] ‖ iv_counter[4] ‖
	// ciphertext[32] ‖ tag[16].
	MasterFrameSize = 4 + SharedFrameSize
)

// MaxFrameSize is the larger of the two wire sizes, enough for any Seal.
const MaxFrameSize = MasterFrameSize

// IV is the per-frame part of the AEAD nonce as it travels on the wire:
// nonce = Random ‖ Counter (little-endian).
type IV struct {
	Random  [IVRandomSize]byte
	Counter uint32
}

// WireIV extracts the IV of a 60- or 64-byte secure frame; ok is false for
// any other length.
func WireIV(wire []byte) (iv IV, ok bool) {
	var off int
	switch len(wire) {
	case SharedFrameSize:
	case MasterFrameSize:
		off = 4
	default:
		return IV{}, false
	}
	copy(iv.Random[:], wire[off:off+IVRandomSize])
	iv.Counter = binary.LittleEndian.Uint32(wire[off+IVRandomSize:])
	return iv, true
}
