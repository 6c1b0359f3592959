package state

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/varta-go/varta/pkg/vlp/secure"
)

const replayKind = "replay"

// replayFields is the number of fields of a sender line, "sender" included.
const replayFields = 9

// EncodeReplay returns the replay state file for marks saved at saved.
func EncodeReplay(saved int64, marks []secure.SenderMark) []byte {
	e := newEncoder(replayKind, saved, len(marks), 80)
	for i := range marks {
		m := &marks[i]
		e.record(func(b []byte) []byte {
			b = append(b, "sender "...)
			b = strconv.AppendUint(b, uint64(m.Pid), 10)
			b = append(b, ' ')
			b = strconv.AppendInt(b, m.LastSeen.UnixNano(), 10)
			b = append(b, ' ')
			b = appendPrefix(b, m.Cur)
			b = append(b, ' ')
			b = appendPrefix(b, m.Prev)
			b = append(b, ' ')
			b = appendOptional(b, m.MaxNonce, m.HasNonce)
			b = append(b, ' ')
			return appendOptional(b, m.MaxTerm, m.HasTerm)
		})
	}
	return e.finish()
}

// appendPrefix writes "<random hex> <high-water counter>" or "- -".
func appendPrefix(b []byte, p secure.PrefixMark) []byte {
	if !p.Set {
		return append(b, "- -"...)
	}
	b = hex.AppendEncode(b, p.Random[:])
	b = append(b, ' ')
	return strconv.AppendUint(b, uint64(p.HW), 10)
}

// Replay is the content of the replay state file.
type Replay struct {
	Saved int64
	Marks []secure.SenderMark
}

// ParseReplay parses a replay state file holding at most maxSenders
// records. Every error wraps ErrFormat and names the line and the rule.
func ParseReplay(data []byte, maxSenders int) (*Replay, error) {
	f, err := unframe(data, replayKind, nil, "sender", maxSenders)
	if err != nil {
		return nil, err
	}
	r := &Replay{Saved: f.saved, Marks: make([]secure.SenderMark, 0, len(f.records))}
	seen := make(map[uint32]struct{}, len(f.records))
	for i, l := range f.records {
		no := f.first + i
		m, err := parseSender(l)
		if err != nil {
			return nil, formatErr(no, "%v", err)
		}
		if _, dup := seen[m.Pid]; dup {
			return nil, formatErr(no, "pid %d appears twice", m.Pid)
		}
		seen[m.Pid] = struct{}{}
		r.Marks = append(r.Marks, m)
	}
	return r, nil
}

func parseSender(l []byte) (secure.SenderMark, error) {
	var m secure.SenderMark
	w, ok := fieldsN(l, replayFields)
	if !ok || w[0] != "sender" {
		return m, fmt.Errorf("must be \"sender\" and %d space-separated fields", replayFields-1)
	}
	pid, err := parseUint(w[1], 32)
	if err != nil || pid == 0 {
		return m, fmt.Errorf("pid: must be 1 ... 4294967295 (%s)", w[1])
	}
	m.Pid = uint32(pid)
	seen, err := parseInt(w[2])
	if err != nil {
		return m, fmt.Errorf("last seen: %v", err)
	}
	m.LastSeen = time.Unix(0, seen)
	if m.Cur, err = parsePrefix(w[3], w[4]); err != nil {
		return m, fmt.Errorf("current prefix: %v", err)
	}
	if m.Prev, err = parsePrefix(w[5], w[6]); err != nil {
		return m, fmt.Errorf("previous prefix: %v", err)
	}
	if m.Prev.Set && !m.Cur.Set {
		return m, fmt.Errorf("a previous prefix without a current one")
	}
	if m.MaxNonce, m.HasNonce, err = optional(w[7], 64); err != nil {
		return m, fmt.Errorf("highest nonce: %v", err)
	}
	if m.MaxTerm, m.HasTerm, err = optional(w[8], 64); err != nil {
		return m, fmt.Errorf("highest terminal timestamp: %v", err)
	}
	if !m.HasNonce && !m.HasTerm {
		return m, fmt.Errorf("a sender needs a highest nonce or terminal timestamp")
	}
	return m, nil
}

func parsePrefix(random, hw string) (secure.PrefixMark, error) {
	var p secure.PrefixMark
	if random == "-" && hw == "-" {
		return p, nil
	}
	if len(random) != 2*secure.IVRandomSize {
		return p, fmt.Errorf("random %q must be %d hex digits", random, 2*secure.IVRandomSize)
	}
	for i := 0; i < len(random); i++ {
		if c := random[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return p, fmt.Errorf("random %q must be lower-case hex digits", random)
		}
	}
	if _, err := hex.Decode(p.Random[:], []byte(random)); err != nil {
		return p, fmt.Errorf("random %q: %v", random, err)
	}
	v, err := parseUint(hw, 32)
	if err != nil {
		return p, fmt.Errorf("counter: %v", err)
	}
	p.HW, p.Set = uint32(v), true
	return p, nil
}
