package observer

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/identity"
	"github.com/varta-go/varta/cmd/varta-watch/internal/recovery"
	"github.com/varta-go/varta/cmd/varta-watch/internal/tracker"
	"github.com/varta-go/varta/pkg/audit"
	"github.com/varta-go/varta/pkg/vlp"
)

// refuse sends a refused record of reason for pid through a, as the
// recovery runner does.
func refuse(a storyAuditor, pid uint32, reason audit.Reason) {
	a.Refused(audit.RefusedRecord{AgentPid: pid, Reason: reason.Column("")}, recovery.Note{Reason: reason})
}

// TestStoryRateLimit: a burst of storyBurst lines passes, the rest are
// counted, and the count is reported on the next line once tokens refill.
func TestStoryRateLimit(t *testing.T) {
	var buf bytes.Buffer
	s := newStory(slog.New(slog.NewTextHandler(&buf, nil)))
	now := time.Unix(1000, 0)
	s.now = func() time.Time { return now }
	a := storyAuditor{next: recovery.NopAuditor{}, s: s}
	for i := 0; i < storyBurst+7; i++ {
		refuse(a, uint32(i+1), audit.ReasonDebounced)
	}
	if n := strings.Count(buf.String(), "recovery refused"); n != storyBurst {
		t.Fatalf("%d lines in the burst, want %d", n, storyBurst)
	}
	buf.Reset()
	now = now.Add(time.Second / storyRate)
	refuse(a, 99, audit.ReasonSkippedStallUnverifiable)
	out := buf.String()
	if !strings.Contains(out, "suppressed=7") || !strings.Contains(out, "pid=99") || !strings.Contains(out, "the process is gone") {
		t.Fatalf("line after the burst: %q", out)
	}
	buf.Reset()
	refuse(a, 100, audit.ReasonDebounced)
	s.flush()
	if !strings.Contains(buf.String(), "suppressed=1") {
		t.Fatalf("flush at shutdown: %q", buf.String())
	}
}

// TestStoryNamesTheAgent: the stall line and every recovery decision line
// name the agent by pid, command name, service and systemd unit, in the
// same order, with "-" for what is not known (a UDP agent).
func TestStoryNamesTheAgent(t *testing.T) {
	billing := &identity.Info{Comm: "billingd", Unit: "billing.service", Service: "billing", Rule: 0}
	for _, tc := range []struct {
		name  string
		ident *identity.Info
		svc   string // the Note's service
		want  string // the agent's attributes as the text handler writes them
	}{
		{"local agent in a unit", billing, "billing", "pid=4242 comm=billingd service=billing unit=billing.service"},
		{"service from the policy", billing, "payments", "pid=4242 comm=billingd service=payments unit=billing.service"},
		{"udp agent", nil, "", "pid=4242 service=- unit=-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			s := newStory(slog.New(slog.NewTextHandler(&buf, nil)))
			origin := vlp.OriginNetworkUnverified
			if tc.ident != nil {
				origin = vlp.OriginKernelAttested
				s.readComm = func(uint32) string { return tc.ident.Comm }
			}
			a := storyAuditor{next: recovery.NopAuditor{}, s: s}
			n := recovery.Note{Service: tc.svc, Ident: tc.ident}
			st := tracker.Stall{Pid: 4242, Origin: origin, Ident: tc.ident}
			if tc.svc != "" && tc.ident != nil {
				st.Ident = tc.ident.WithService(tc.svc, 0)
			}
			s.stall(st, time.Second)
			a.Spawn(audit.SpawnRecord{AgentPid: 4242, ChildPid: 77, Program: "/bin/restart"}, n)
			a.Complete(audit.CompleteRecord{AgentPid: 4242, ChildPid: 77, Outcome: audit.OutcomeReaped, ExitCode: 0, DurationNs: 5e6}, n)
			s.stall(st, time.Second)
			n.Reason = audit.ReasonBackoff
			a.Refused(audit.RefusedRecord{AgentPid: 4242, Reason: audit.ReasonBackoff.Column(tc.svc)}, n)
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			msgs := []string{"agent stalled", "recovery spawned", "recovery completed", "agent stalled", "recovery refused"}
			if len(lines) != len(msgs) {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), len(msgs), buf.String())
			}
			for i, l := range lines {
				if !strings.Contains(l, `msg="`+msgs[i]) {
					t.Errorf("line %d: %q, want %q", i, l, msgs[i])
				}
				if !strings.Contains(l, " "+tc.want+" ") {
					t.Errorf("line %d: %q does not name the agent as %q", i, l, tc.want)
				}
			}
			if !strings.Contains(lines[4], "reason=backoff:"+tc.svc+" why=") {
				t.Errorf("refused line: %q", lines[4])
			}
		})
	}
}
