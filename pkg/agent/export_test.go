package agent

// SetClockForTest replaces the monotonic clock (ns since connect).
func (a *Agent) SetClockForTest(f func() int64) {
	a.mu.Lock()
	a.clock = f
	a.mu.Unlock()
}

// SetNonceForTest sets the next regular nonce.
func (a *Agent) SetNonceForTest(n uint64) {
	a.mu.Lock()
	a.nonce = n
	a.mu.Unlock()
}

// FDForTest returns the connected socket (-1 when unconnected).
func (a *Agent) FDForTest() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.fd
}
