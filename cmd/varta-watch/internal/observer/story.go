package observer

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/budget"
	"github.com/varta-go/varta/cmd/varta-watch/internal/logthrottle"
	"github.com/varta-go/varta/cmd/varta-watch/internal/policy"
	"github.com/varta-go/varta/cmd/varta-watch/internal/recovery"
	"github.com/varta-go/varta/cmd/varta-watch/internal/tracker"
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
// by pid and, for local processes, by its command name. It is used from the
// control loop and the recovery runner's goroutine.
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
	attrs := []any{"threshold", threshold.String(), "last_nonce", st.Nonce, "origin", st.Origin.String()}
	if id := st.Ident; id != nil {
		attrs = append(attrs, "service", id.Service, "unit", id.Unit)
	}
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

// storyAuditor logs every recovery decision, then passes it on.
type storyAuditor struct {
	next recovery.Auditor
	s    *story
}

func (a storyAuditor) Spawn(r recovery.SpawnRecord) {
	a.s.emit(slog.LevelInfo, "recovery spawned", r.AgentPid, "service", r.Service, "child", r.ChildPid, "program", r.Program)
	a.next.Spawn(r)
}

func (a storyAuditor) Complete(r recovery.CompleteRecord) {
	attrs := []any{"child", r.ChildPid, "outcome", r.Outcome}
	switch {
	case r.Signal > 0:
		attrs = append(attrs, "signal", r.Signal)
	case r.ExitCode >= 0:
		attrs = append(attrs, "exit", r.ExitCode)
	}
	attrs = append(attrs, "duration", r.Duration.Round(time.Millisecond).String())
	level := slog.LevelInfo
	if r.Outcome != recovery.CompleteReaped || r.ExitCode != 0 {
		level = slog.LevelWarn
	}
	a.s.emit(level, "recovery completed", r.AgentPid, attrs...)
	a.s.forget(r.AgentPid)
	a.next.Complete(r)
}

func (a storyAuditor) Refused(r recovery.RefusedRecord) {
	a.s.emit(slog.LevelWarn, "recovery refused", r.AgentPid, "service", r.Service, "reason", r.Reason, "why", refusalText(r.Reason))
	if r.Reason != recovery.ReasonOutstandingInFlight {
		a.s.forget(r.AgentPid)
	}
	a.next.Refused(r)
}

// refusalText explains a refusal reason in words (docs/recovery.md).
func refusalText(reason string) string {
	reason, _, _ = strings.Cut(reason, ":") // policy reasons carry the service
	switch reason {
	case budget.ReasonBackoff:
		return "the service was recovered recently: its restart budget's backoff window is open"
	case budget.ReasonGaveUp:
		return "the service used up its restart budget (give_up) and waits for retry_after"
	case policy.ReasonIdentityUnsafe:
		return "a placeholder of the policy's recovery arguments has an unknown or unsafe value"
	case recovery.ReasonCrossNamespace:
		return "the agent is in another PID namespace (--allow-cross-namespace-agents is off)"
	case recovery.ReasonUnauthenticatedTransport:
		return "the beats came over UDP without the operator's acceptance flag"
	case recovery.ReasonSocketModeOnly:
		return "the sender's identity could not be pinned"
	case recovery.ReasonDebounced:
		return "the same process was recovered less than --recovery-debounce-ms ago"
	case recovery.ReasonOutstandingInFlight:
		return "a recovery child for this process is still running"
	case recovery.ReasonOutstandingCapacity:
		return "the table of running recovery children is full"
	case recovery.ReasonDebounceCapacity:
		return "the debounce ledger is full"
	case recovery.ReasonSpawnFailed:
		return "the recovery program could not be started"
	case recovery.ReasonAgentResumed:
		return "the agent beat again before recovery started"
	case recovery.ReasonPidRecycled:
		return "the pid now belongs to another process"
	case recovery.ReasonStallUnverifiable:
		return "the process is gone (a crash or a stop: pair varta with the init system's Restart=)"
	}
	return "see docs/recovery.md"
}
