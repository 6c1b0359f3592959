package policy

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
	"github.com/varta-go/varta/pkg/secretfile"
)

const example = `defaults:                 # optional
  threshold: 1500ms
rules:                    # first match wins
  - name: web
    match: { unit: "nginx.service" }
    threshold: 2s
    recovery: ["/bin/systemctl", "restart", "{unit}"]
    backoff: { initial: 10s, max: 5m, factor: 2, reset_after: 10m }
    give_up: { after: 5, within: 15m, retry_after: 1h }
  - name: importer
    match: { exe: "/opt/importer/bin/*", uid: 1001 }
    threshold: 60s
    recovery: none
  - name: pods
    match: { container: "0123*" }
  - name: forever
    match: { comm: "batch-*" }
    give_up: { after: 2, within: 1m, retry_after: never }
`

func TestParseExample(t *testing.T) {
	p, err := Parse("policy.yml", []byte(example))
	if err != nil {
		t.Fatal(err)
	}
	want := []Rule{
		{Name: "web", Line: 4, Match: Match{Unit: "nginx.service"}, Threshold: 2 * time.Second,
			Recovery: Recovery{Set: true, Argv: []string{"/bin/systemctl", "restart", "{unit}"}},
			Budget: budget.Config{
				Backoff: budget.Backoff{Initial: 10 * time.Second, Max: 5 * time.Minute, Factor: 2, ResetAfter: 10 * time.Minute},
				GiveUp:  budget.GiveUp{After: 5, Within: 15 * time.Minute, RetryAfter: time.Hour},
			}},
		{Name: "importer", Line: 10, Match: Match{Exe: "/opt/importer/bin/*", UID: 1001, HasUID: true},
			Threshold: time.Minute, Recovery: Recovery{Set: true, None: true}},
		{Name: "pods", Line: 14, Match: Match{Container: "0123*"}, Threshold: 1500 * time.Millisecond},
		{Name: "forever", Line: 16, Match: Match{Comm: "batch-*"}, Threshold: 1500 * time.Millisecond,
			Budget: budget.Config{GiveUp: budget.GiveUp{After: 2, Within: time.Minute, Never: true}}},
	}
	if !reflect.DeepEqual(p.Rules, want) {
		t.Fatalf("rules:\n got %+v\nwant %+v", p.Rules, want)
	}
	for _, r := range p.Rules {
		if err := r.Budget.Validate(); err != nil {
			t.Errorf("rule %s: %v", r.Name, err)
		}
	}
	if th := p.Thresholds(); !reflect.DeepEqual(th, []time.Duration{2 * time.Second, time.Minute, 1500 * time.Millisecond}) {
		t.Fatalf("thresholds %v", th)
	}
	if p.Budget("web").GiveUp.After != 5 || p.Budget("nobody") != (budget.Config{}) || !p.HasService("pods") || p.HasService("x") {
		t.Fatal("service lookups")
	}
}

func TestParseDefaultsBudget(t *testing.T) {
	p, err := Parse("p", []byte(`
defaults:
  backoff: {initial: 1s}
  give_up: {after: 3, within: 1m, retry_after: 5s}
rules:
  - {name: a, match: {comm: a}}
  - {name: b, match: {comm: b}, backoff: {initial: 2s, factor: 1}}
`))
	if err != nil {
		t.Fatal(err)
	}
	a, b := p.Rules[0].Budget, p.Rules[1].Budget
	if a.Backoff != (budget.Backoff{Initial: time.Second, Max: 5 * time.Minute, Factor: 2, ResetAfter: DefaultResetAfter}) || a.GiveUp.After != 3 {
		t.Fatalf("defaults not applied: %+v", a)
	}
	if b.Backoff != (budget.Backoff{Initial: 2 * time.Second, Max: 2 * time.Second, Factor: 1, ResetAfter: DefaultResetAfter}) || b.GiveUp.RetryAfter != 5*time.Second {
		t.Fatalf("rule b: %+v", b)
	}
	if p.Rules[0].Threshold != 0 {
		t.Fatal("a threshold without defaults.threshold")
	}
}

// TestParseErrors: every error names the file, the line and the key.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		line     int
		key, msg string
	}{
		{"empty", "", 0, "", "empty"},
		{"syntax", "rules: [\n", 0, "", "YAML"},
		{"unknown top key", "rules: []\nrule: []\n", 2, "rule", "unknown key"},
		{"no rules", "defaults: {threshold: 1s}\n", 1, "rules", "missing"},
		{"rules not a list", "rules: {}\n", 1, "rules", "want a list"},
		{"unknown rule key", "rules:\n  - name: a\n    match: {comm: a}\n    treshold: 2s\n", 4, "rules[0].treshold", "unknown key"},
		{"duplicate key", "rules:\n  - name: a\n    name: b\n    match: {comm: a}\n", 3, "rules[0].name", "duplicate key (first at line 2)"},
		{"duplicate rule", "rules:\n  - {name: a, match: {comm: a}}\n  - {name: a, match: {comm: b}}\n", 3, "rules[1].name", `duplicate rule name "a" (first at line 2)`},
		{"missing name", "rules:\n  - match: {comm: a}\n", 2, "rules[0].name", "missing"},
		{"missing match", "rules:\n  - name: a\n", 2, "rules[0].match", "missing"},
		{"empty match", "rules:\n  - {name: a, match: {}}\n", 2, "rules[0].match", "empty"},
		{"unknown match key", "rules:\n  - {name: a, match: {pid: 1}}\n", 2, "rules[0].match.pid", "unknown key"},
		{"bad glob", "rules:\n  - {name: a, match: {comm: \"[a\"}}\n", 2, "rules[0].match.comm", "bad glob"},
		{"bad uid", "rules:\n  - {name: a, match: {uid: -1}}\n", 2, "rules[0].match.uid", "not a uid"},
		{"bad name", "rules:\n  - {name: -rf, match: {comm: a}}\n", 2, "rules[0].name", "a name is"},
		{"reserved name", "rules:\n  - {name: other, match: {comm: a}}\n", 2, "rules[0].name", "reserved"},
		{"snooze target name", "rules:\n  - {name: \"pid:7\", match: {comm: a}}\n", 2, "rules[0].name", "snooze target"},
		{"snooze all name", "rules:\n  - {name: all, match: {comm: a}}\n", 2, "rules[0].name", "snooze target"},
		{"bad duration", "rules:\n  - name: a\n    match: {comm: a}\n    threshold: 2x\n", 4, "rules[0].threshold", `bad duration "2x"`},
		{"small threshold", "rules:\n  - {name: a, match: {comm: a}, threshold: 1ms}\n", 2, "rules[0].threshold", "at least 10ms"},
		{"defaults threshold", "defaults:\n  threshold: soon\nrules: []\n", 2, "defaults.threshold", "bad duration"},
		{"unknown placeholder", "rules:\n  - name: a\n    match: {comm: a}\n    recovery: [/bin/x, \"{host}\"]\n", 4, "rules[0].recovery[1]", "unknown placeholder {host}"},
		{"placeholder in program", "rules:\n  - {name: a, match: {comm: a}, recovery: [\"/bin/{comm}\"]}\n", 2, "rules[0].recovery[0]", "may not hold placeholders"},
		{"empty recovery", "rules:\n  - {name: a, match: {comm: a}, recovery: []}\n", 2, "rules[0].recovery", "empty argument list"},
		{"recovery string", "rules:\n  - {name: a, match: {comm: a}, recovery: /bin/restart}\n", 2, "rules[0].recovery", "want an argument list"},
		{"quoted none", "rules:\n  - {name: a, match: {comm: a}, recovery: \"none\"}\n", 2, "rules[0].recovery", "want an argument list"},
		{"backoff without initial", "rules:\n  - {name: a, match: {comm: a}, backoff: {max: 1s}}\n", 2, "rules[0].backoff.initial", "missing"},
		{"backoff max below initial", "rules:\n  - {name: a, match: {comm: a}, backoff: {initial: 1m, max: 1s}}\n", 2, "rules[0].backoff.max", "shorter than initial"},
		{"bad factor", "rules:\n  - name: a\n    match: {comm: a}\n    backoff:\n      initial: 1s\n      factor: 0.5\n", 6, "rules[0].backoff.factor", "from 1 to 1000"},
		{"give_up without retry_after", "rules:\n  - {name: a, match: {comm: a}, give_up: {after: 3, within: 1m}}\n", 2, "rules[0].give_up.retry_after", "or never"},
		{"give_up bad retry", "rules:\n  - {name: a, match: {comm: a}, give_up: {after: 3, within: 1m, retry_after: forever}}\n", 2, "rules[0].give_up.retry_after", "bad duration"},
		{"give_up zero", "rules:\n  - {name: a, match: {comm: a}, give_up: {after: 0, within: 1m, retry_after: 1s}}\n", 2, "rules[0].give_up.after", "count from 1"},
		{"two documents", "rules: []\n---\nrules: []\n", 2, "", "more than one"},
		{"wrong type", "rules:\n  - {name: [a], match: {comm: a}}\n", 2, "rules[0].name", "want a name, got a list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("/etc/varta/policy.yml", []byte(tc.in))
			var pe *Error
			if !errors.As(err, &pe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not a policy *Error", err)
			}
			if pe.Line != tc.line || pe.Key != tc.key || !strings.Contains(pe.Msg, tc.msg) {
				t.Fatalf("got line %d key %q msg %q; want line %d key %q msg containing %q", pe.Line, pe.Key, pe.Msg, tc.line, tc.key, tc.msg)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, `policy file "/etc/varta/policy.yml"`) {
				t.Fatalf("message does not name the file: %s", msg)
			}
			if tc.line > 0 && !strings.Contains(msg, "line ") {
				t.Fatalf("message does not name the line: %s", msg)
			}
		})
	}
}

func TestParseTooManyThresholds(t *testing.T) {
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := range MaxThresholds {
		b.WriteString("  - {name: r" + string(rune('a'+i)) + ", match: {comm: x}, threshold: " + (time.Duration(i+1) * time.Second).String() + "}\n")
	}
	if _, err := Parse("p", []byte(b.String())); err == nil || !strings.Contains(err.Error(), "distinct thresholds") {
		t.Fatalf("err %v", err)
	}
}

func info(unit, comm, exe, container string, uid uint32, hasUID bool) *identity.Info {
	return &identity.Info{Unit: unit, Comm: comm, Exe: exe, Container: container, UID: uid, HasUID: hasUID, Service: identity.Unknown, Rule: -1}
}

func TestMatch(t *testing.T) {
	p, err := Parse("p", []byte(example))
	if err != nil {
		t.Fatal(err)
	}
	const u = identity.Unknown
	for _, tc := range []struct {
		name    string
		info    *identity.Info
		rule    int
		service string
	}{
		{"unit", info("nginx.service", "nginx", "/usr/sbin/nginx", u, 33, true), 0, "web"},
		{"exe and uid", info(u, "importer", "/opt/importer/bin/run", u, 1001, true), 1, "importer"},
		{"exe but wrong uid", info(u, "importer", "/opt/importer/bin/run", u, 1002, true), -1, "importer"},
		{"glob does not cross /", info(u, "importer", "/opt/importer/bin/x/run", u, 1001, true), -1, "importer"},
		{"container", info("libpod-0123.scope", "app", "/app", "0123456789ab", 0, true), 2, "pods"},
		{"comm glob", info("batch.service", "batch-7", "/bin/batch", u, 0, true), 3, "forever"},
		{"no rule: unit", info("other.service", "x", "/x", u, 0, true), -1, "other.service"},
		{"UDP agent matches nothing", identity.None, -1, u},
		{"unknown exe never matches a glob", info(u, "importer", u, u, 1001, true), -1, "importer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := p.Match(tc.info)
			if r != tc.rule || p.Service(tc.info, r) != tc.service {
				t.Fatalf("rule %d service %q; want %d %q", r, p.Service(tc.info, r), tc.rule, tc.service)
			}
		})
	}
	var none *Policy
	if none.Match(info("a.service", "a", "/a", u, 0, true)) != -1 || none.Rule(0) != nil || none.Service(identity.None, -1) != u {
		t.Fatal("a nil policy matched")
	}
}

func TestExpand(t *testing.T) {
	argv := []string{"/bin/restart", "--unit={unit}", "{pid}", "{service}", "{comm}", "{uid}", "{container}", "{literal}", "{", "x{pid"}
	ok := &identity.Info{Unit: "nginx.service", Comm: "nginx", Exe: "/usr/sbin/nginx", Container: "0123456789ab", UID: 33, HasUID: true, Service: "web"}
	got, err := Expand(argv, 4242, ok)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/bin/restart", "--unit=nginx.service", "4242", "web", "nginx", "33", "0123456789ab", "{literal}", "{", "x{pid"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	for _, tc := range []struct {
		name string
		arg  string
		mod  func(i *identity.Info)
	}{
		{"comm -rf", "{comm}", func(i *identity.Info) { i.Comm = "-rf" }},
		{"comm with slash", "{comm}", func(i *identity.Info) { i.Comm = "../../etc" }},
		{"comm unknown", "{comm}", func(i *identity.Info) { i.Comm = identity.Unknown }},
		{"comm control", "{comm}", func(i *identity.Info) { i.Comm = "a\x1b[2J" }},
		{"unit unknown", "{unit}", func(i *identity.Info) { i.Unit = identity.Unknown }},
		{"unit -.slice", "{unit}", func(i *identity.Info) { i.Unit = "-.slice" }},
		{"unit bad grammar", "{unit}", func(i *identity.Info) { i.Unit = "a b.service" }},
		{"service unknown", "{service}", func(i *identity.Info) { i.Service = identity.Unknown }},
		{"uid unknown", "{uid}", func(i *identity.Info) { i.HasUID = false }},
		{"container unknown", "{container}", func(i *identity.Info) { i.Container = identity.Unknown }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := *ok
			tc.mod(&bad)
			got, err := Expand([]string{"/bin/x", "a", tc.arg}, 1, &bad)
			if !errors.Is(err, ErrIdentityUnsafe) || got != nil {
				t.Fatalf("got %q, %v; want identity_unsafe", got, err)
			}
			if !strings.Contains(err.Error(), tc.arg) {
				t.Fatalf("error %q does not name %s", err, tc.arg)
			}
		})
	}
	// A placeholder the argv does not use is never checked.
	if _, err := Expand([]string{"/bin/x", "{pid}"}, 9, identity.None); err != nil {
		t.Fatalf("{pid} of a UDP agent: %v", err)
	}
}

func TestLoadSecretFileRules(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "policy.yml")
	if err := os.WriteFile(good, []byte(example), 0o600); err != nil {
		t.Fatal(err)
	}
	if p, err := Load(good); err != nil || len(p.Rules) != 4 || p.Path != good {
		t.Fatalf("Load: %v", err)
	}
	loose := filepath.Join(dir, "loose.yml")
	if err := os.WriteFile(loose, []byte(example), 0o620); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(loose, 0o620); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(loose); !errors.Is(err, secretfile.ErrPermissive) {
		t.Fatalf("group-writable policy: %v", err)
	}
	link := filepath.Join(dir, "link.yml")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(link); !errors.Is(err, secretfile.ErrSymlink) {
		t.Fatalf("symlinked policy: %v", err)
	}
	bad := filepath.Join(dir, "bad.yml")
	if err := os.WriteFile(bad, []byte("rules:\n  - {name: a}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), bad) {
		t.Fatalf("invalid policy: %v", err)
	}
}
