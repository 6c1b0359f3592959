package state

import (
	"fmt"
	"strconv"

	"github.com/varta-go/varta/pkg/vlp"
)

// Agent is one tracked agent as saved across a restart.
type Agent struct {
	Pid    uint32
	Origin vlp.Origin
	// StartTime is the process start time in clock ticks since boot and
	// NSInode its pid-namespace inode, for kernel-attested agents (0 when
	// unknown). Together with Pid and the boot id they name the process.
	StartTime uint64
	NSInode   uint64
	// LastBeat is the wall time (Unix ns) of the last accepted frame.
	LastBeat int64
	// Nonce is the last accepted regular nonce, TerminalTs the last
	// accepted terminal timestamp.
	Nonce       uint64
	HasNonce    bool
	TerminalTs  uint64
	HasTerminal bool
	// Stalled: the stall was surfaced (and not yet ended by a beat).
	Stalled bool
	CrossNS bool
	Stalls  uint64
	Beats   uint64
	// Recovered is the wall time (Unix ns) of the last recovery child
	// spawned for this process, for the debounce gate.
	Recovered    int64
	HasRecovered bool
}

// Agents is the content of the agents state file.
type Agents struct {
	Saved  int64  // wall time (Unix ns) of the save
	BootID string // kernel boot id at the save, "" when unknown
	Agents []Agent
}

const agentsKind = "agents"

// EncodeAgents returns the agents state file for a.
func EncodeAgents(a *Agents) []byte {
	boot := a.BootID
	if boot == "" {
		boot = "-"
	}
	e := newEncoder(agentsKind, a.Saved, len(a.Agents), 96, "boot "+boot)
	for i := range a.Agents {
		g := &a.Agents[i]
		e.record(func(b []byte) []byte {
			b = append(b, "agent "...)
			b = strconv.AppendUint(b, uint64(g.Pid), 10)
			b = append(b, ' ')
			b = strconv.AppendUint(b, uint64(g.Origin), 10)
			b = append(b, ' ')
			b = appendOptional(b, g.StartTime, g.StartTime != 0)
			b = append(b, ' ')
			b = appendOptional(b, g.NSInode, g.NSInode != 0)
			b = append(b, ' ')
			b = strconv.AppendInt(b, g.LastBeat, 10)
			b = append(b, ' ')
			b = appendOptional(b, g.Nonce, g.HasNonce)
			b = append(b, ' ')
			b = appendOptional(b, g.TerminalTs, g.HasTerminal)
			b = append(b, ' ')
			b = appendBool(b, g.Stalled)
			b = append(b, ' ')
			b = appendBool(b, g.CrossNS)
			b = append(b, ' ')
			b = strconv.AppendUint(b, g.Stalls, 10)
			b = append(b, ' ')
			b = strconv.AppendUint(b, g.Beats, 10)
			b = append(b, ' ')
			return appendOptionalInt(b, g.Recovered, g.HasRecovered)
		})
	}
	return e.finish()
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, '1')
	}
	return append(b, '0')
}

func parseBool(s string) (bool, error) {
	switch s {
	case "0":
		return false, nil
	case "1":
		return true, nil
	}
	return false, fmt.Errorf("%q must be 0 or 1", s)
}

// agentFields is the number of fields of an agent line, "agent" included.
const agentFields = 13

// ParseAgents parses an agents state file holding at most maxAgents
// records. Every error wraps ErrFormat and names the line and the rule.
func ParseAgents(data []byte, maxAgents int) (*Agents, error) {
	f, err := unframe(data, agentsKind, []string{"boot"}, "agent", maxAgents)
	if err != nil {
		return nil, err
	}
	a := &Agents{Saved: f.saved}
	boot, ok := f.headers["boot"]
	if !ok {
		return nil, formatErr(3, "missing \"boot <id>\" line")
	}
	if boot != "-" {
		if !validBootID(boot) {
			return nil, formatErr(3, "boot id %q must be 36 characters of hex digits and dashes", boot)
		}
		a.BootID = boot
	}
	a.Agents = make([]Agent, 0, len(f.records))
	seen := make(map[uint32]struct{}, len(f.records))
	for i, l := range f.records {
		no := f.first + i
		g, err := parseAgent(l)
		if err != nil {
			return nil, formatErr(no, "%v", err)
		}
		if _, dup := seen[g.Pid]; dup {
			return nil, formatErr(no, "pid %d appears twice", g.Pid)
		}
		seen[g.Pid] = struct{}{}
		a.Agents = append(a.Agents, g)
	}
	return a, nil
}

func parseAgent(l []byte) (Agent, error) {
	var g Agent
	w, ok := fieldsN(l, agentFields)
	if !ok || w[0] != "agent" {
		return g, fmt.Errorf("must be \"agent\" and %d space-separated fields", agentFields-1)
	}
	pid, err := parseUint(w[1], 32)
	if err != nil || pid == 0 {
		return g, fmt.Errorf("pid: must be 1 ... 4294967295 (%s)", w[1])
	}
	g.Pid = uint32(pid)
	o, err := parseUint(w[2], 8)
	if err != nil || o > uint64(vlp.OriginKernelAttested) {
		return g, fmt.Errorf("origin %q: must be 0 ... 3", w[2])
	}
	g.Origin = vlp.Origin(o)
	var has bool
	if g.StartTime, has, err = optional(w[3], 64); err != nil || (has && g.StartTime == 0) {
		return g, fmt.Errorf("start time %q: must be \"-\" (unknown) or a positive number", w[3])
	}
	if g.NSInode, has, err = optional(w[4], 64); err != nil || (has && g.NSInode == 0) {
		return g, fmt.Errorf("namespace inode %q: must be \"-\" (unknown) or a positive number", w[4])
	}
	if g.LastBeat, err = parseInt(w[5]); err != nil {
		return g, fmt.Errorf("last beat: %v", err)
	}
	if g.Nonce, g.HasNonce, err = optional(w[6], 64); err != nil {
		return g, fmt.Errorf("nonce: %v", err)
	}
	if g.TerminalTs, g.HasTerminal, err = optional(w[7], 64); err != nil {
		return g, fmt.Errorf("terminal timestamp: %v", err)
	}
	if g.Stalled, err = parseBool(w[8]); err != nil {
		return g, fmt.Errorf("stalled: %v", err)
	}
	if g.CrossNS, err = parseBool(w[9]); err != nil {
		return g, fmt.Errorf("cross-namespace: %v", err)
	}
	if g.Stalls, err = parseUint(w[10], 64); err != nil {
		return g, fmt.Errorf("stalls: %v", err)
	}
	if g.Beats, err = parseUint(w[11], 64); err != nil {
		return g, fmt.Errorf("beats: %v", err)
	}
	if g.Recovered, g.HasRecovered, err = parseOptionalInt(w[12]); err != nil {
		return g, fmt.Errorf("recovered: %v", err)
	}
	if g.Origin == vlp.OriginKernelAttested && (g.StartTime == 0 || g.NSInode == 0) {
		return g, fmt.Errorf("a kernel-attested agent needs its start time and namespace inode")
	}
	return g, nil
}

func validBootID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'):
		default:
			return false
		}
	}
	return true
}
