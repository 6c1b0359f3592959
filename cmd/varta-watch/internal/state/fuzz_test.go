package state_test

import (
	"bytes"
	"testing"

	"github.com/varta-go/varta/cmd/varta-watch/internal/state"
)

// FuzzParseAgents: any bytes either parse into agents that re-encode to
// the same file, or are refused with an error; never a panic.
func FuzzParseAgents(f *testing.F) {
	f.Add(state.EncodeAgents(sampleAgents()))
	f.Add(state.EncodeAgents(&state.Agents{Saved: 1}))
	f.Add([]byte("varta-watch-state agents v1\nsaved 1\nboot -\nend 0 00000000\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := state.ParseAgents(data, 64)
		if err != nil {
			return
		}
		if len(a.Agents) > 64 {
			t.Fatalf("%d agents over the limit", len(a.Agents))
		}
		if again := state.EncodeAgents(a); !bytes.Equal(again, data) {
			t.Fatalf("accepted a non-canonical file:\n%q\nre-encodes to\n%q", data, again)
		}
	})
}

// FuzzParseReplay: likewise for the replay file.
func FuzzParseReplay(f *testing.F) {
	f.Add(state.EncodeReplay(42, sampleMarks()))
	f.Add(state.EncodeReplay(0, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := state.ParseReplay(data, 64)
		if err != nil {
			return
		}
		if again := state.EncodeReplay(r.Saved, r.Marks); !bytes.Equal(again, data) {
			t.Fatalf("accepted a non-canonical file:\n%q\nre-encodes to\n%q", data, again)
		}
	})
}

// FuzzParseAgentsSealed fuzzes the record rules behind the checksum: the
// input is a file body that the test seals with a matching end line.
func FuzzParseAgentsSealed(f *testing.F) {
	f.Add([]byte("varta-watch-state agents v1\nsaved 1\nboot -\nagent 4242 3 987654 4026531836 1700000000000000000 17 - 1 0 2 17 -\n"), 1)
	f.Add([]byte("varta-watch-state agents v1\nsaved -9\nboot 0f4c2d1e-8a3b-4c5d-9e6f-0123456789ab\nagent 7 0 - - -5 - 99 0 1 0 1 -1\n"), 1)
	f.Fuzz(func(t *testing.T, body []byte, n int) {
		if n < 0 || n > 1000 {
			return
		}
		data := state.Reseal(body, n)
		a, err := state.ParseAgents(data, 64)
		if err != nil {
			return
		}
		if again := state.EncodeAgents(a); !bytes.Equal(again, data) {
			t.Fatalf("accepted a non-canonical file:\n%q\nre-encodes to\n%q", data, again)
		}
	})
}

// FuzzParseReplaySealed: likewise for the replay file.
func FuzzParseReplaySealed(f *testing.F) {
	f.Add([]byte("varta-watch-state replay v1\nsaved 42\nsender 10 1700000000000000001 01020304050607ff 4294967295 0909090909090909 0 3 8\nsender 11 5 0000000000000000 7 - - - 1\n"), 2)
	f.Fuzz(func(t *testing.T, body []byte, n int) {
		if n < 0 || n > 1000 {
			return
		}
		data := state.Reseal(body, n)
		r, err := state.ParseReplay(data, 64)
		if err != nil {
			return
		}
		if again := state.EncodeReplay(r.Saved, r.Marks); !bytes.Equal(again, data) {
			t.Fatalf("accepted a non-canonical file:\n%q\nre-encodes to\n%q", data, again)
		}
	})
}
