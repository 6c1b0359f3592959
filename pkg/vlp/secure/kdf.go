package secure

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
)

// HKDF info labels (docs/vlp.md §6). Each is followed by a NUL byte and
// little-endian integers.
const (
	labelAgent   = "varta-agent-v1\x00"
	labelIV      = "varta-iv-prefix-v1\x00"
	labelEpoch   = "varta-epoch-v1\x00"
	labelPanicIV = "varta-panic-iv-v1\x00"
)

// SaltSize is the size of a session salt and of a per-process panic salt.
const SaltSize = 16

// IVRandomSize is the size of iv_random, the per-prefix part of the nonce.
const IVRandomSize = 8

func agentInfo(pid uint32) []byte {
	return binary.LittleEndian.AppendUint32([]byte(labelAgent), pid)
}

func ivInfo(index uint32) []byte {
	return binary.LittleEndian.AppendUint32([]byte(labelIV), index)
}

func epochInfo(epoch uint64) []byte {
	return binary.LittleEndian.AppendUint64([]byte(labelEpoch), epoch)
}

func panicIVInfo(pid uint32, timestamp uint64, counter uint32) []byte {
	b := binary.LittleEndian.AppendUint32([]byte(labelPanicIV), pid)
	b = binary.LittleEndian.AppendUint64(b, timestamp)
	return binary.LittleEndian.AppendUint32(b, counter)
}

// derive runs HKDF-SHA256 with an empty salt, as every VLP derivation does,
// writing len(out) bytes.
func derive(out, secret, info []byte) {
	okm, err := hkdf.Key(sha256.New, secret, nil, string(info), len(out))
	if err != nil {
		// hkdf.Key fails only for outputs longer than 255 hash blocks or,
		// in FIPS 140-only mode, for secrets shorter than 112 bits; the
		// derivations here ask for at most 32 bytes from 128- or 256-bit
		// secrets.
		panic("secure: HKDF-SHA256: " + err.Error())
	}
	copy(out, okm)
	clear(okm)
}

// AgentKey derives the per-agent key of the master-key mode:
// HKDF-SHA256(IKM = master, info = "varta-agent-v1\0" ‖ pid LE).
func AgentKey(master Key, pid uint32) Key {
	var k Key
	derive(k[:], master[:], agentInfo(pid))
	return k
}

// IVPrefix derives iv_random for prefix index from a session salt:
// HKDF-SHA256(IKM = salt, info = "varta-iv-prefix-v1\0" ‖ index LE), 8 bytes.
func IVPrefix(salt [SaltSize]byte, index uint32) [IVRandomSize]byte {
	var p [IVRandomSize]byte
	derive(p[:], salt[:], ivInfo(index))
	return p
}

// EpochKey derives the (reserved, not on the wire) epoch key:
// HKDF-SHA256(IKM = agentKey, info = "varta-epoch-v1\0" ‖ epoch LE).
func EpochKey(agentKey Key, epoch uint64) Key {
	var k Key
	derive(k[:], agentKey[:], epochInfo(epoch))
	return k
}

// PanicIVPrefix derives the iv_random of a panic frame from a per-process
// salt: HKDF-SHA256(IKM = salt, info = "varta-panic-iv-v1\0" ‖ pid LE ‖
// timestamp LE ‖ counter LE), 8 bytes.
func PanicIVPrefix(salt [SaltSize]byte, pid uint32, timestamp uint64, counter uint32) [IVRandomSize]byte {
	var p [IVRandomSize]byte
	derive(p[:], salt[:], panicIVInfo(pid, timestamp, counter))
	return p
}
