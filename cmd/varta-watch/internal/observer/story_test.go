package observer

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/recovery"
)

// TestStoryRateLimit: a burst of storyBurst lines passes, the rest are
// counted, and the count is reported on the next line once tokens refill.
func TestStoryRateLimit(t *testing.T) {
	var buf bytes.Buffer
	s := newStory(slog.New(slog.NewTextHandler(&buf, nil)))
	now := time.Unix(1000, 0)
	s.now = func() time.Time { return now }
	a := storyAuditor{next: recovery.NopAuditor{}, s: s}
	for i := 0; i < storyBurst+7; i++ {
		a.Refused(recovery.RefusedRecord{AgentPid: uint32(i + 1), Reason: recovery.ReasonDebounced})
	}
	if n := strings.Count(buf.String(), "recovery refused"); n != storyBurst {
		t.Fatalf("%d lines in the burst, want %d", n, storyBurst)
	}
	buf.Reset()
	now = now.Add(time.Second / storyRate)
	a.Refused(recovery.RefusedRecord{AgentPid: 99, Reason: recovery.ReasonStallUnverifiable})
	out := buf.String()
	if !strings.Contains(out, "suppressed=7") || !strings.Contains(out, "pid=99") || !strings.Contains(out, "the process is gone") {
		t.Fatalf("line after the burst: %q", out)
	}
	buf.Reset()
	a.Refused(recovery.RefusedRecord{AgentPid: 100, Reason: recovery.ReasonDebounced})
	s.flush()
	if !strings.Contains(buf.String(), "suppressed=1") {
		t.Fatalf("flush at shutdown: %q", buf.String())
	}
}
