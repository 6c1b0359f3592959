package secure

// Internals exposed to the external tests of this package.

var (
	AgentInfo   = agentInfo
	IVInfo      = ivInfo
	EpochInfo   = epochInfo
	PanicIVInfo = panicIVInfo
)

// SetIV forces the next Seal to use iv_random = prefix and counter, for
// reproducing fixed vectors.
func (s *Sealer) SetIV(prefix [IVRandomSize]byte, counter uint32) {
	s.prefix = prefix
	s.counter = counter
}

// SetPosition moves the session to prefix index and counter under the
// current salt.
func (s *Sealer) SetPosition(index, counter uint32) {
	s.index = index
	s.counter = counter
	s.prefix = IVPrefix(s.salt, index)
}

// SessionState reports the nonce state.
func (s *Sealer) SessionState() (salt [SaltSize]byte, index uint32, prefix [IVRandomSize]byte, counter uint32) {
	return s.salt, s.index, s.prefix, s.counter
}
