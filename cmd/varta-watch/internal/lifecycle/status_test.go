package lifecycle

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestStatusSenderRate: a status updated 1,000 times within a few
// intervals reaches the notify socket at most once per interval, and the
// last text always arrives.
func TestStatusSenderRate(t *testing.T) {
	path := tempSocketPath(t)
	conn := listenNotify(t, path)
	const interval = 50 * time.Millisecond
	s := NewStatusSender(NewNotifier(path), interval)
	defer s.Stop()
	start := time.Now()
	for i := range 1000 {
		s.Set(fmt.Sprintf("%d agents", i))
		time.Sleep(200 * time.Microsecond)
	}
	elapsed := time.Since(start)
	var got []string
	for {
		m, ok := recv(t, conn, 4*interval)
		if !ok {
			break
		}
		got = append(got, m)
	}
	if len(got) == 0 || got[len(got)-1] != "STATUS=999 agents" {
		t.Fatalf("last status %q, want STATUS=999 agents", got)
	}
	for _, m := range got {
		if !strings.HasPrefix(m, "STATUS=") {
			t.Fatalf("got %q", m)
		}
	}
	if max := int(elapsed/interval) + 2; len(got) > max {
		t.Fatalf("%d STATUS= lines in %v, want at most %d (one per %v)", len(got), elapsed, max, interval)
	}
	if int(s.Sent()) != len(got) {
		t.Fatalf("Sent() = %d, received %d", s.Sent(), len(got))
	}
	NewStatusSender(NewNotifier(""), interval).Stop() // disabled: nothing started
}
