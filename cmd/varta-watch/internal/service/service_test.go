package service

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/budget"
	"github.com/varta-go/varta/cmd/varta-watch/internal/identity"
	"github.com/varta-go/varta/cmd/varta-watch/internal/policy"
	"github.com/varta-go/varta/cmd/varta-watch/internal/recovery"
	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
	"github.com/varta-go/varta/pkg/audit"
	"github.com/varta-go/varta/pkg/vlp"
)

const testPolicy = `rules:
  - name: web
    match: {unit: "nginx.service"}
    threshold: 2s
    recovery: ["/bin/systemctl", "restart", "{unit}"]
    backoff: {initial: 1s, factor: 2, max: 4s}
    give_up: {after: 3, within: 1m, retry_after: 5s}
  - name: named
    match: {comm: "worker-*"}
    recovery: ["/bin/kill", "{comm}"]
  - name: quiet
    match: {comm: "batch"}
    threshold: 1m
    recovery: none
`

func writePolicy(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "policy.yml")
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func newRegistry(t *testing.T, opts Options) *Registry {
	t.Helper()
	if opts.Threshold == 0 {
		opts.Threshold = 1500 * time.Millisecond
	}
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func agent(unit, comm string) *identity.Info {
	return &identity.Info{UID: 1000, HasUID: true, Comm: comm, Exe: "/usr/bin/" + comm, Unit: unit,
		Container: identity.Unknown, Service: identity.Unknown, Rule: -1}
}

const sec = uint64(time.Second)

func TestClassifyAndThreshold(t *testing.T) {
	r := newRegistry(t, Options{PolicyPath: writePolicy(t, t.TempDir(), testPolicy)})
	for _, tc := range []struct {
		info      *identity.Info
		service   string
		rule      int
		threshold time.Duration
	}{
		{agent("nginx.service", "nginx"), "web", 0, 2 * time.Second},
		{agent(identity.Unknown, "worker-3"), "named", 1, 1500 * time.Millisecond},
		{agent("batch.service", "batch"), "quiet", 2, time.Minute},
		{agent("cron.service", "cron"), "cron.service", -1, 1500 * time.Millisecond},
		{agent(identity.Unknown, "loose"), "loose", -1, 1500 * time.Millisecond},
		{identity.None, identity.Unknown, -1, 1500 * time.Millisecond},
	} {
		got := r.Classify(tc.info)
		if got.Service != tc.service || got.Rule != tc.rule || r.Threshold(got) != tc.threshold {
			t.Errorf("%+v: service %q rule %d threshold %v", tc.info, got.Service, got.Rule, r.Threshold(got))
		}
		if again := r.Classify(got); again != got {
			t.Errorf("reclassifying an unchanged identity allocated a new one")
		}
	}
	if th := r.Thresholds(); !reflect.DeepEqual(th, []time.Duration{1500 * time.Millisecond, 2 * time.Second, time.Minute}) {
		t.Fatalf("thresholds %v", th)
	}
}

// plan submits one stall of info at t seconds and returns the plan.
func plan(r *Registry, pid uint32, info *identity.Info, t float64) recovery.Plan {
	info = r.Classify(info)
	return r.Plan(recovery.Stall{Pid: pid, Generation: 1, Origin: vlp.OriginKernelAttested, Ident: info, Service: info.Service}, uint64(t*float64(sec)))
}

func TestPlanBudgetAndGaveUp(t *testing.T) {
	var gave []GaveUp
	path := writePolicy(t, t.TempDir(), testPolicy)
	r := newRegistry(t, Options{PolicyPath: path, OnGaveUp: func(g GaveUp) { gave = append(gave, g) }})
	web := agent("nginx.service", "nginx")
	type want struct {
		refuse string
		argv   []string
	}
	restart := []string{"/bin/systemctl", "restart", "nginx.service"}
	for i, st := range []struct {
		at   float64
		want want
	}{
		{10, want{argv: restart}},
		{10.5, want{refuse: "backoff:web"}},
		{11, want{argv: restart}},
		{12, want{refuse: "backoff:web"}},
		{13, want{argv: restart}}, // third within a minute: gives up
		{14, want{refuse: "gave_up:web"}},
		{18, want{argv: restart}}, // retry_after 5 s
	} {
		p := plan(r, uint32(100+i), web, st.at)
		if p.Refuse.Column(p.Service) != st.want.refuse || !reflect.DeepEqual(p.Argv, st.want.argv) || p.Service != "web" {
			t.Fatalf("step %d at %vs: %+v, want %+v", i, st.at, p, st.want)
		}
		if p.Argv != nil && p.Source != path+"#web" {
			t.Fatalf("source %q", p.Source)
		}
	}
	if len(gave) != 1 || gave[0].Service != "web" || gave[0].Pid != 104 || gave[0].Until != int64(18*sec) {
		t.Fatalf("gave up callbacks %+v", gave)
	}
}

func TestPlanIdentityUnsafeAndNone(t *testing.T) {
	r := newRegistry(t, Options{PolicyPath: writePolicy(t, t.TempDir(), testPolicy)})
	if p := plan(r, 7, agent(identity.Unknown, "worker-1"), 1); p.Refuse.Column(p.Service) != "" || !reflect.DeepEqual(p.Argv, []string{"/bin/kill", "worker-1"}) {
		t.Fatalf("safe comm: %+v", p)
	}
	// A comm that matches the rule but would be read as an option.
	r2 := newRegistry(t, Options{PolicyPath: writePolicy(t, t.TempDir(), strings.Replace(testPolicy, `comm: "worker-*"`, `comm: "*rf"`, 1))})
	minus := agent(identity.Unknown, "-rf")
	if p := plan(r2, 8, minus, 1); p.Refuse != audit.ReasonIdentityUnsafe || p.Refuse.Column(p.Service) != "identity_unsafe:named" || p.Argv != nil {
		t.Fatalf("-rf: %+v", p)
	}
	// identity_unsafe does not consume the budget: nothing was recorded.
	if snap := r2.Book().Snapshot(0, r2.Policy().Budget); len(snap) != 0 {
		t.Fatalf("budget touched: %+v", snap)
	}
	if p := plan(r, 9, agent("batch.service", "batch"), 1); !p.Skip || p.Service != "quiet" {
		t.Fatalf("recovery none: %+v", p)
	}
	if p := plan(r, 10, agent("cron.service", "cron"), 1); p.Skip || p.Refuse.Column(p.Service) != "" || p.Argv != nil || p.Service != "cron.service" {
		t.Fatalf("no rule: %+v", p)
	}
	// A rule without recovery and no command-line program: nothing runs,
	// and the budget is not spent.
	r3 := newRegistry(t, Options{PolicyPath: writePolicy(t, t.TempDir(), "rules:\n  - {name: bare, match: {comm: bare}, give_up: {after: 1, within: 1m, retry_after: never}}\n")})
	for i := range 3 {
		if p := plan(r3, 12, agent(identity.Unknown, "bare"), float64(i)); !p.Skip || p.Refuse.Column(p.Service) != "" {
			t.Fatalf("bare rule without a program: %+v", p)
		}
	}
	r4 := newRegistry(t, Options{CommandLineRecovery: true, PolicyPath: writePolicy(t, t.TempDir(), "rules:\n  - {name: bare, match: {comm: bare}, give_up: {after: 1, within: 1m, retry_after: never}}\n")})
	if p := plan(r4, 12, agent(identity.Unknown, "bare"), 0); p.Skip || p.Refuse.Column(p.Service) != "" || p.Argv != nil {
		t.Fatalf("bare rule with the command line's program: %+v", p)
	}
	if p := plan(r4, 12, agent(identity.Unknown, "bare"), 1); p.Refuse.Column(p.Service) != "gave_up:bare" {
		t.Fatalf("bare rule budget: %+v", p)
	}
	// The {unit} of a UDP agent: no rule can match it, the command line applies.
	if p := plan(r, 11, identity.None, 1); p.Argv != nil || p.Refuse.Column(p.Service) != "" {
		t.Fatalf("UDP agent: %+v", p)
	}
}

func TestRetryAt(t *testing.T) {
	r := newRegistry(t, Options{PolicyPath: writePolicy(t, t.TempDir(), testPolicy), RetryInterval: 30 * time.Second, MinRetry: time.Second})
	web := r.Classify(agent("nginx.service", "nginx"))
	plan(r, 1, web, 10)
	if at, ok := r.RetryAt(web, int64(10*sec)); !ok || at != int64(11*sec) {
		t.Fatalf("web after the first recovery: %v %v", time.Duration(at), ok)
	}
	if at, ok := r.RetryAt(web, int64(10.8*float64(sec))); !ok || at != int64(11.8*float64(sec)) {
		t.Fatalf("web: MinRetry applies: %v %v", time.Duration(at), ok)
	}
	if at, ok := r.RetryAt(r.Classify(agent("cron.service", "cron")), int64(10*sec)); !ok || at != int64(40*sec) {
		t.Fatalf("no rule: %v %v", time.Duration(at), ok)
	}
	if _, ok := r.RetryAt(r.Classify(agent("batch.service", "batch")), int64(10*sec)); ok {
		t.Fatal("recovery none retried")
	}
	r0 := newRegistry(t, Options{})
	if _, ok := r0.RetryAt(identity.None, 1); ok {
		t.Fatal("retry without --recovery-retry-ms")
	}
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	path := writePolicy(t, dir, testPolicy)
	r := newRegistry(t, Options{PolicyPath: path})
	plan(r, 1, agent("nginx.service", "nginx"), 1)
	writePolicy(t, dir, "rules:\n  - {name: web, match: {unit: nginx.service}, bogus: 1}\n")
	err := r.Reload()
	if !errors.Is(err, policy.ErrInvalid) || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("bad reload: %v", err)
	}
	if r.Policy().Rules[0].Threshold != 2*time.Second || r.C.ReloadFailed.Load() != 1 {
		t.Fatal("the old policy was not kept")
	}
	writePolicy(t, dir, strings.Replace(testPolicy, "threshold: 2s", "threshold: 3s", 1))
	if err := r.Reload(); err != nil || r.C.ReloadOK.Load() != 1 {
		t.Fatal(err)
	}
	web := r.Classify(agent("nginx.service", "nginx"))
	if r.Threshold(web) != 3*time.Second {
		t.Fatal("the new policy is not in force")
	}
	// The budget of web survived the reload: still inside its backoff.
	if p := plan(r, 2, web, 1.5); p.Refuse.Column(p.Service) != "backoff:web" {
		t.Fatalf("budget lost across the reload: %+v", p)
	}
	if _, err := New(Options{PolicyPath: filepath.Join(dir, "missing.yml"), Threshold: time.Second}); err == nil {
		t.Fatal("missing policy file accepted")
	}
}

func TestOverflowAndCounting(t *testing.T) {
	r := newRegistry(t, Options{MaxServices: 2})
	a, b, c := r.Classify(agent("a.service", "a")), r.Classify(agent("b.service", "b")), r.Classify(agent("c.service", "c"))
	if r.Label("a.service") != "a.service" || r.Label("c.service") != Overflow {
		t.Fatal("labels")
	}
	r.NoteStall(1, a, 1)
	r.NoteStall(2, c, 1)
	r.NoteStall(3, c, 2)
	aud := &recordingAuditor{}
	au := r.Auditor(aud)
	au.Spawn(audit.SpawnRecord{}, recovery.Note{Service: b.Service})
	au.Complete(audit.CompleteRecord{Outcome: audit.OutcomeReaped, ExitCode: 3}, recovery.Note{Service: b.Service})
	au.Complete(audit.CompleteRecord{Outcome: audit.OutcomeKilled, ExitCode: -1}, recovery.Note{Service: b.Service})
	au.Refused(audit.RefusedRecord{Reason: "debounced"}, recovery.Note{Service: a.Service, Reason: audit.ReasonDebounced})
	if aud.n != 4 {
		t.Fatalf("forwarded %d records", aud.n)
	}
	got := map[string]Status{}
	for _, s := range r.Services(0) {
		got[s.Service] = s
	}
	if len(got) != 3 || got["a.service"].Stalls != 1 || got[Overflow].Stalls != 2 ||
		got["b.service"].Outcomes[stats.OutcomeSpawned] != 1 || got["b.service"].Outcomes[stats.OutcomeReapedNonzero] != 1 ||
		got["b.service"].Outcomes[stats.OutcomeKilled] != 1 || got["a.service"].Outcomes[stats.Refusal(audit.ReasonDebounced)] != 1 {
		t.Fatalf("services %+v", got)
	}
	if r.C.Overflow.Load() != 2 {
		t.Fatalf("overflow counted %d", r.C.Overflow.Load())
	}
	if got["a.service"].Budget.Phase != budget.PhaseOK {
		t.Fatal("a budget without a rule")
	}
}

type recordingAuditor struct{ n int }

func (a *recordingAuditor) Spawn(audit.SpawnRecord, recovery.Note)       { a.n++ }
func (a *recordingAuditor) Complete(audit.CompleteRecord, recovery.Note) { a.n++ }
func (a *recordingAuditor) Refused(audit.RefusedRecord, recovery.Note)   { a.n++ }

func TestViews(t *testing.T) {
	r := newRegistry(t, Options{PolicyPath: writePolicy(t, t.TempDir(), testPolicy), MaxServices: 2})
	web := r.Classify(agent("nginx.service", "nginx"))
	cron := r.Classify(agent("cron.service", "cron"))
	late := r.Classify(agent("late.service", "late")) // third name: overflow
	plan(r, 1, web, 10)
	plan(r, 2, web, 11)
	plan(r, 3, web, 13) // gives up
	agents := []struct {
		info  *identity.Info
		state int
	}{{web, 0}, {web, 3}, {cron, 1}, {late, 2}, {late, 2}, {identity.None, 0}, {web, 9}}
	views := r.Views(int64(14*sec), func(fn func(*identity.Info, int)) {
		for _, a := range agents {
			fn(a.info, a.state)
		}
	})
	got := map[string]View{}
	for _, v := range views {
		got[v.Service] = v
	}
	if len(got) != 3 || got["web"].Agents != [5]uint64{1, 0, 0, 1, 0} || !got["web"].GaveUp || got["web"].Outcomes != [stats.NumOutcomes]uint64{} ||
		got["cron.service"].Agents != [5]uint64{0, 1, 0, 0, 0} || got[Overflow].Agents != [5]uint64{1, 0, 2, 0, 0} {
		t.Fatalf("views %+v", got)
	}
	if v := r.Views(int64(20*sec), nil); v[len(v)-1].Service != "web" || v[len(v)-1].GaveUp {
		t.Fatalf("after retry_after: %+v", v)
	}
}
