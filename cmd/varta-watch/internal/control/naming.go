package control

import (
	"bytes"
	"os"
	"strconv"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Identity names an agent for operators.
type Identity struct {
	Service string // "-" when unknown
	Unit    string // "-" when unknown
}

// ServiceNamer names the service (and unit) of an agent. The daemon asks
// it when it lists agents and when it decides a recovery — never on the
// per-beat path. generation changes when a pid is reused, local is false
// for agents whose pid is only claimed (UDP), which have no identity.
// A resolver of systemd units and policy rules implements it as well.
type ServiceNamer interface {
	Identify(pid uint32, generation uint64, local bool) Identity
}

// CommNamer is the ServiceNamer used until agents carry a resolved
// identity: the service of a local agent is its comm (/proc/<pid>/comm,
// set by the process itself and therefore informative, not trusted),
// otherwise pid:N — the same spelling as the snooze target that matches
// that one agent. The unit is always "-". Names are cached per pid and
// generation; the cache is bounded.
type CommNamer struct {
	// Proc is the proc file system's mount point (default /proc).
	Proc string
	// Max bounds the cache (default 65536 entries; it is cleared when
	// full).
	Max int

	mu    sync.Mutex
	cache map[uint32]named
}

type named struct {
	gen  uint64
	name string
}

// Identify implements ServiceNamer.
func (n *CommNamer) Identify(pid uint32, generation uint64, local bool) Identity {
	if !local || pid == 0 {
		return Identity{Service: pidName(pid), Unit: "-"}
	}
	n.mu.Lock()
	if c, ok := n.cache[pid]; ok && c.gen == generation {
		n.mu.Unlock()
		return Identity{Service: c.name, Unit: "-"}
	}
	n.mu.Unlock()
	name := n.readComm(pid)
	n.mu.Lock()
	max := n.Max
	if max <= 0 {
		max = 1 << 16
	}
	if n.cache == nil || len(n.cache) >= max {
		n.cache = make(map[uint32]named)
	}
	n.cache[pid] = named{gen: generation, name: name}
	n.mu.Unlock()
	return Identity{Service: name, Unit: "-"}
}

func pidName(pid uint32) string { return "pid:" + strconv.FormatUint(uint64(pid), 10) }

// readComm returns a usable comm or pid:N: a comm that is empty, starts
// with "-" or holds control characters or invalid UTF-8 is not a name an
// operator could type as a snooze target.
func (n *CommNamer) readComm(pid uint32) string {
	proc := n.Proc
	if proc == "" {
		proc = "/proc"
	}
	b, err := os.ReadFile(proc + "/" + strconv.FormatUint(uint64(pid), 10) + "/comm")
	if err != nil {
		return pidName(pid)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	if len(b) == 0 || b[0] == '-' || !utf8.Valid(b) || string(b) == "all" || bytes.HasPrefix(b, []byte("pid:")) {
		return pidName(pid)
	}
	for _, r := range string(b) {
		if unicode.IsControl(r) {
			return pidName(pid)
		}
	}
	first, _ := utf8.DecodeRune(b)
	last, _ := utf8.DecodeLastRune(b)
	if unicode.IsSpace(first) || unicode.IsSpace(last) {
		return pidName(pid)
	}
	return string(b)
}
