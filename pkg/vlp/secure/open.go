package secure

import (
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/varta-go/varta/pkg/vlp"
)

// Errors returned by Opener.Open. ErrPidMismatch, ErrNoSharedKey and
// ErrNoMasterKey all wrap ErrAuth: the observer counts every one of them as
// a decrypt failure.
var (
	// ErrWireSize: the datagram is neither 60 nor 64 bytes (count it as
	// truncated).
	ErrWireSize = errors.New("secure: datagram is neither 60 nor 64 bytes")
	// ErrAuth: no configured key authenticated the frame.
	ErrAuth = errors.New("secure: frame authentication failed")
	// ErrPidMismatch: a master-key frame authenticated but its inner pid
	// differs from the cleartext agent_pid.
	ErrPidMismatch = fmt.Errorf("secure: inner pid differs from the cleartext agent pid: %w", ErrAuth)
	// ErrNoSharedKey: a 60-byte frame arrived but no shared key is
	// configured.
	ErrNoSharedKey = fmt.Errorf("secure: shared-key frame but no shared key configured: %w", ErrAuth)
	// ErrNoMasterKey: a 64-byte frame arrived but no master key is
	// configured.
	ErrNoMasterKey = fmt.Errorf("secure: master-key frame but no master key configured: %w", ErrAuth)
)

// DefaultAgentKeyCache is the default number of derived agent keys an
// Opener keeps for the master-key path.
const DefaultAgentKeyCache = 1024

// OpenerConfig lists the keys an Opener accepts.
type OpenerConfig struct {
	// SharedKeys are the pre-shared keys: the primary key first, then the
	// accepted (rotation) keys. Every one is tried for every 60-byte frame.
	SharedKeys []Key
	// MasterKey enables the 64-byte master-key frames when set.
	MasterKey *Key
	// AgentKeyCache is how many derived agent keys (with their ready
	// ciphers) are kept, rounded up to a power of two; 0 means
	// DefaultAgentKeyCache. The cache is direct-mapped by pid: a hit costs
	// no derivation and no allocation, a miss derives the key with HKDF and
	// builds a cipher (a few small allocations).
	AgentKeyCache int
}

// OpenInfo tells the caller what Open did.
type OpenInfo struct {
	// Attempts is the number of AEAD open operations performed (for
	// varta_secure_aead_attempts_total): every shared key for a 60-byte
	// frame, one for a 64-byte frame.
	Attempts int
	// KeyIndex is the index in OpenerConfig.SharedKeys of the key that
	// authenticated a shared-key frame, -1 otherwise.
	KeyIndex int
	// IV is the frame's iv_random and iv_counter, for ReplayGuard.Check.
	IV IV
}

type agentEntry struct {
	pid  uint32
	aead cipher.AEAD // nil: empty slot
}

// Opener authenticates and decrypts secure frames with ciphers built once
// at construction. Opening a shared-key frame, and a master-key frame whose
// agent key is cached, does not allocate. An Opener is not safe for
// concurrent use; build one per receive loop.
type Opener struct {
	shared []cipher.AEAD
	master *Key
	agents []agentEntry
	shift  uint // 32 - log2(len(agents))

	// Scratch plaintexts: win receives the first successful open, try the
	// attempts after it, so a later failing attempt (which zeroes its
	// output) cannot erase the result.
	win, try [vlp.FrameSize]byte
}

// NewOpener builds the ciphers for cfg. At least one shared key or a master
// key is required.
func NewOpener(cfg OpenerConfig) (*Opener, error) {
	if len(cfg.SharedKeys) == 0 && cfg.MasterKey == nil {
		return nil, errors.New("secure: opener needs a shared key or a master key")
	}
	o := &Opener{}
	for i := range cfg.SharedKeys {
		a, err := chacha20poly1305.New(cfg.SharedKeys[i][:])
		if err != nil {
			return nil, fmt.Errorf("secure: shared key %d: %w", i, err)
		}
		o.shared = append(o.shared, a)
	}
	if cfg.MasterKey != nil {
		m := *cfg.MasterKey
		o.master = &m
		n := cfg.AgentKeyCache
		if n <= 0 {
			n = DefaultAgentKeyCache
		}
		if n > 1<<20 {
			n = 1 << 20
		}
		logN := bits.Len(uint(n - 1)) // round up to a power of two
		o.agents = make([]agentEntry, 1<<logN)
		o.shift = uint(32 - logN)
	}
	return o, nil
}

// Open authenticates and decrypts a 60-byte (shared-key) or 64-byte
// (master-key) frame into dst. dst is written only on success; its contents
// still have to go through vlp.Decode. On failure the error is ErrWireSize
// or wraps ErrAuth.
func (o *Opener) Open(dst *[vlp.FrameSize]byte, wire []byte) (OpenInfo, error) {
	switch len(wire) {
	case SharedFrameSize:
		return o.openShared(dst, wire)
	case MasterFrameSize:
		return o.openMaster(dst, wire)
	}
	return OpenInfo{KeyIndex: -1}, ErrWireSize
}

func (o *Opener) openShared(dst *[vlp.FrameSize]byte, wire []byte) (OpenInfo, error) {
	info := OpenInfo{KeyIndex: -1}
	info.IV, _ = WireIV(wire)
	if len(o.shared) == 0 {
		return info, ErrNoSharedKey
	}
	nonce := wire[:chacha20poly1305.NonceSize]
	sealed := wire[chacha20poly1305.NonceSize:]
	// Every key, every time: the work does not depend on which key (if
	// any) matches.
	for i, a := range o.shared {
		out := o.win[:0]
		if info.KeyIndex >= 0 {
			out = o.try[:0]
		}
		if _, err := a.Open(out, nonce, sealed, nil); err == nil && info.KeyIndex < 0 {
			info.KeyIndex = i
		}
		info.Attempts++
	}
	clear(o.try[:])
	if info.KeyIndex < 0 {
		return info, ErrAuth
	}
	*dst = o.win
	clear(o.win[:])
	return info, nil
}

func (o *Opener) openMaster(dst *[vlp.FrameSize]byte, wire []byte) (OpenInfo, error) {
	info := OpenInfo{KeyIndex: -1}
	info.IV, _ = WireIV(wire)
	if o.master == nil {
		return info, ErrNoMasterKey
	}
	pid := binary.LittleEndian.Uint32(wire[:4])
	a, err := o.agentCipher(pid)
	if err != nil {
		return info, err
	}
	info.Attempts = 1
	aad := wire[:4]
	nonce := wire[4 : 4+chacha20poly1305.NonceSize]
	sealed := wire[4+chacha20poly1305.NonceSize:]
	if _, err := a.Open(o.win[:0], nonce, sealed, aad); err != nil {
		return info, ErrAuth
	}
	if binary.LittleEndian.Uint32(o.win[4:8]) != pid {
		clear(o.win[:])
		return info, ErrPidMismatch
	}
	*dst = o.win
	clear(o.win[:])
	return info, nil
}

// agentCipher returns the cipher for pid's derived agent key, from the
// cache when possible.
func (o *Opener) agentCipher(pid uint32) (cipher.AEAD, error) {
	e := &o.agents[(pid*0x9E3779B1)>>o.shift&uint32(len(o.agents)-1)]
	if e.aead != nil && e.pid == pid {
		return e.aead, nil
	}
	k := AgentKey(*o.master, pid)
	a, err := chacha20poly1305.New(k[:])
	clear(k[:])
	if err != nil {
		return nil, fmt.Errorf("secure: agent key for pid %d: %w", pid, err)
	}
	e.pid, e.aead = pid, a
	return a, nil
}
