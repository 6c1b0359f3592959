package observer

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/identity"
	"github.com/varta-go/varta/cmd/varta-watch/internal/recovery"
	"github.com/varta-go/varta/cmd/varta-watch/internal/tracker"
	"github.com/varta-go/varta/pkg/audit"
	"github.com/varta-go/varta/pkg/logthrottle"
	"github.com/varta-go/varta/pkg/vlp"
)

// Story-line rate limit: a burst of storyBurst lines, then storyRate per
// second. Lines over the limit are counted and the count is reported on
// the next line that is written (suppressed=N) and at shutdown.
const (
	storyBurst = 50
	storyRate  = 10
)

// story writes one log line per stall and per recovery decision (spawned,
// refused and why, completed with exit status or signal), naming the agent
// by pid, for local processes by its command name, and by its service and
// systemd unit. It is used from the control loop and the recovery runner's
// goroutine.
type story struct {
	log *slog.Logger

	mu       sync.Mutex
	lim      logthrottle.Limiter
	comm     map[uint32]string // command names seen at stall time, until the decision is complete
	now      func() time.Time
	readComm func(pid uint32) string
}

func newStory(log *slog.Logger) *story {
	return &story{log: log, lim: logthrottle.New(storyBurst, time.Second/storyRate),
		comm: make(map[uint32]string), now: time.Now, readComm: procComm}
}

// procComm is the command name of a local process, or "" if unknown.
func procComm(pid uint32) string {
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(pid), 10) + "/comm")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// emit writes msg with the agent's attributes, if the limit allows.
func (s *story) emit(level slog.Level, msg string, pid uint32, attrs ...any) {
	s.mu.Lock()
	ok := s.lim.AllowAt(s.now())
	var sup uint64
	if ok {
		sup = s.lim.TakeSuppressed()
	}
	comm := s.comm[pid]
	s.mu.Unlock()
	if !ok {
		return
	}
	a := []any{"pid", pid}
	if comm != "" {
		a = append(a, "comm", comm)
	}
	a = append(a, attrs...)
	if sup > 0 {
		a = append(a, "suppressed", sup)
	}
	s.log.Log(context.Background(), level, msg, a...)
}

// stall reports a surfaced stall. The command name of a kernel-attested
// sender is read now, while the process may still exist.
func (s *story) stall(st tracker.Stall, threshold time.Duration) {
	if st.Origin == vlp.OriginKernelAttested {
		if c := s.readComm(st.Pid); c != "" {
			s.mu.Lock()
			if len(s.comm) < 4096 {
				s.comm[st.Pid] = c
			}
			s.mu.Unlock()
		}
	}
	attrs := append(agentAttrs(serviceName(st.Ident), st.Ident),
		"threshold", threshold.String(), "last_nonce", st.Nonce, "origin", st.Origin.String())
	s.emit(slog.LevelWarn, "agent stalled: silent past the threshold", st.Pid, attrs...)
}

func (s *story) forget(pid uint32) {
	s.mu.Lock()
	delete(s.comm, pid)
	s.mu.Unlock()
}

// flush reports lines suppressed since the last one, at shutdown.
func (s *story) flush() {
	s.mu.Lock()
	sup := s.lim.TakeSuppressed()
	s.mu.Unlock()
	if sup > 0 {
		s.log.Warn("stall and recovery lines suppressed by the rate limit", "suppressed", sup)
	}
}

// agentAttrs names an agent beyond its pid in every stall and recovery
// line: its service and systemd unit ("-" when unknown).
func agentAttrs(service string, id *identity.Info) []any {
	if service == "" {
		service = identity.Unknown
	}
	unit := identity.Unknown
	if id != nil && id.Unit != "" {
		unit = id.Unit
	}
	return []any{"service", service, "unit", unit}
}

// storyAuditor logs every recovery decision, then passes it on.
type storyAuditor struct {
	next recovery.Auditor
	s    *story
}

func (a storyAuditor) Spawn(r audit.SpawnRecord, n recovery.Note) {
	attrs := append(agentAttrs(n.Service, n.Ident), "child", r.ChildPid, "program", r.Program)
	a.s.emit(slog.LevelInfo, "recovery spawned", r.AgentPid, attrs...)
	a.next.Spawn(r, n)
}

func (a storyAuditor) Complete(r audit.CompleteRecord, n recovery.Note) {
	attrs := append(agentAttrs(n.Service, n.Ident), "child", r.ChildPid, "outcome", string(r.Outcome))
	switch {
	case r.Signal > 0:
		attrs = append(attrs, "signal", r.Signal)
	case r.ExitCode >= 0:
		attrs = append(attrs, "exit", r.ExitCode)
	}
	attrs = append(attrs, "duration", time.Duration(r.DurationNs).Round(time.Millisecond).String())
	level := slog.LevelInfo
	if r.Outcome != audit.OutcomeReaped || r.ExitCode != 0 {
		level = slog.LevelWarn
	}
	a.s.emit(level, "recovery completed", r.AgentPid, attrs...)
	a.s.forget(r.AgentPid)
	a.next.Complete(r, n)
}

func (a storyAuditor) Refused(r audit.RefusedRecord, n recovery.Note) {
	why := n.Reason.Info().Why
	if why == "" {
		why = "see docs/recovery.md"
	}
	attrs := append(agentAttrs(n.Service, n.Ident), "reason", r.Reason, "why", why)
	a.s.emit(slog.LevelWarn, "recovery refused", r.AgentPid, attrs...)
	if n.Reason != audit.ReasonOutstandingInFlight {
		a.s.forget(r.AgentPid)
	}
	a.next.Refused(r, n)
}
