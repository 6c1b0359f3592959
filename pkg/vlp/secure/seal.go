package secure

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/varta-go/varta/pkg/vlp"
)

// lastCounter is the iv_counter value a sender never uses: on reaching it
// the sender moves to the next prefix index with counter 0 (docs/vlp.md §6), so
// counters 0 … 0xFFFF_FFFE are sent under each prefix.
const lastCounter = 0xFFFF_FFFF

// Sealer is the sending side of one secure session. It owns the nonce
// discipline of docs/vlp.md §6: a 16-byte salt from crypto/rand at construction
// and at every Reset, iv_random = IVPrefix(salt, index) from index 0, and
// an iv_counter from 0 that advances only on Commit, after the datagram was
// accepted by the kernel. Seal does not advance anything: sealing again
// without a Commit reuses the same nonce, which is safe only because the
// earlier datagram never left the process.
//
// When the counter reaches 0xFFFF_FFFF the session moves to the next prefix
// index with counter 0; when the index would overflow, Commit draws a fresh
// salt itself (the same as Reset).
//
// A Sealer is not safe for concurrent use, and a process must not share
// one with a forked child: build a new Sealer for the child's pid.
type Sealer struct {
	aead   cipher.AEAD
	master bool
	pidLE  [4]byte // cleartext agent_pid of a master-key frame

	salt    [SaltSize]byte
	index   uint32
	prefix  [IVRandomSize]byte
	counter uint32
}

// NewSharedSealer returns a sealer for 60-byte shared-key frames.
func NewSharedSealer(key Key) (*Sealer, error) {
	a, err := chacha20poly1305.New(key[:])
	if err != nil {
		return nil, fmt.Errorf("secure: shared-key sealer: %w", err)
	}
	s := &Sealer{aead: a}
	if err := s.Reset(); err != nil {
		return nil, err
	}
	return s, nil
}

// NewMasterSealer returns a sealer for 64-byte master-key frames sent by
// pid: the key is AgentKey(master, pid) and every frame it seals must carry
// pid as its inner pid (the observer refuses any other).
func NewMasterSealer(master Key, pid uint32) (*Sealer, error) {
	k := AgentKey(master, pid)
	a, err := chacha20poly1305.New(k[:])
	clear(k[:])
	if err != nil {
		return nil, fmt.Errorf("secure: master-key sealer: %w", err)
	}
	s := &Sealer{aead: a, master: true}
	binary.LittleEndian.PutUint32(s.pidLE[:], pid)
	if err := s.Reset(); err != nil {
		return nil, err
	}
	return s, nil
}

// Size is the wire size of the frames this sealer produces: 60 or 64.
func (s *Sealer) Size() int {
	if s.master {
		return MasterFrameSize
	}
	return SharedFrameSize
}

// Seal writes the secure frame carrying frame into dst under the current
// (prefix, counter) and returns its length, Size(). It panics if dst is
// shorter than Size(). It does not allocate and does not advance the
// counter: call Commit once the datagram was sent.
func (s *Sealer) Seal(dst []byte, frame *[vlp.FrameSize]byte) int {
	n := s.Size()
	if len(dst) < n {
		panic("secure: Seal destination shorter than the frame")
	}
	dst = dst[:n]
	var aad []byte
	off := 0
	if s.master {
		copy(dst[:4], s.pidLE[:])
		aad = dst[:4]
		off = 4
	}
	copy(dst[off:], s.prefix[:])
	binary.LittleEndian.PutUint32(dst[off+IVRandomSize:], s.counter)
	nonce := dst[off : off+chacha20poly1305.NonceSize]
	s.aead.Seal(dst[off+chacha20poly1305.NonceSize:off+chacha20poly1305.NonceSize], nonce, frame[:], aad)
	return n
}

// Commit advances the nonce after a successful send.
func (s *Sealer) Commit() {
	s.counter++
	if s.counter != lastCounter {
		return
	}
	s.counter = 0
	if s.index == ^uint32(0) {
		if err := s.Reset(); err != nil {
			// crypto/rand.Read does not return errors since Go 1.24 (it
			// aborts the program instead); this is unreachable.
			panic(err)
		}
		return
	}
	s.index++
	s.prefix = IVPrefix(s.salt, s.index)
}

// Reset starts a new session: a fresh salt, prefix index 0, counter 0. Call
// it at every reconnect.
func (s *Sealer) Reset() error {
	if _, err := rand.Read(s.salt[:]); err != nil {
		return fmt.Errorf("secure: session salt: %w", err)
	}
	s.index = 0
	s.counter = 0
	s.prefix = IVPrefix(s.salt, 0)
	return nil
}
