package beatloop

import (
	"time"

	"github.com/varta-go/varta/pkg/agent"
)

// SendTerminal sends the terminal frame and, while the observer's queue is
// full (KernelQueueFull), tries again every 5 ms for up to patience: the
// dying gasp is the last frame this process sends, so it is worth a short
// wait that a regular beat never makes. Other drops are not retried here
// (the agent's own reconnect still applies).
func SendTerminal(a *agent.Agent, patience time.Duration) agent.Result {
	deadline := time.Now().Add(patience)
	for {
		r := a.Terminal()
		if r.Outcome != agent.Dropped || r.Reason != agent.KernelQueueFull || time.Now().After(deadline) {
			return r
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TerminalPatience is how long varta-beat waits for room in a full queue
// to send the terminal frame.
const TerminalPatience = 200 * time.Millisecond
