package testsupport

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

// Event is one line of the events file (docs/events-file.md):
// observer_ns, kind, pid, nonce, status and payload, tab-separated.
type Event struct {
	NS                                uint64
	Kind, Pid, Nonce, Status, Payload string
}

// ReadEvents parses the events file at path as it is now (nil if it does
// not exist yet). A line without six columns or with a bad observer_ns
// fails the test.
func ReadEvents(t testing.TB, path string) []Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []Event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) != 6 {
			t.Fatalf("%s: events line with %d columns: %q", path, len(cols), sc.Text())
		}
		ns, err := strconv.ParseUint(cols[0], 10, 64)
		if err != nil {
			t.Fatalf("%s: bad observer_ns in %q", path, sc.Text())
		}
		out = append(out, Event{ns, cols[1], cols[2], cols[3], cols[4], cols[5]})
	}
	return out
}

// Filter returns the events of kind, from pid unless pid is empty.
func Filter(evs []Event, kind, pid string) []Event {
	var out []Event
	for _, e := range evs {
		if e.Kind == kind && (pid == "" || e.Pid == pid) {
			out = append(out, e)
		}
	}
	return out
}
