package snooze

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/varta-go/varta/pkg/secretfile"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in   string
		want Target
		err  bool
	}{
		{"all", Target{All: true}, false},
		{"web", Target{Service: "web"}, false},
		{"nginx.service", Target{Service: "nginx.service"}, false},
		{"kworker/0:1", Target{Service: "kworker/0:1"}, false},
		{"billing worker", Target{Service: "billing worker"}, false},
		{"pid:1", Target{Pid: 1}, false},
		{"pid:4294967295", Target{Pid: 4294967295}, false},
		{"pid:0", Target{}, true},
		{"pid:01", Target{}, true},
		{"pid:+1", Target{}, true},
		{"pid:", Target{}, true},
		{"pid:x", Target{}, true},
		{"pid:4294967296", Target{}, true},
		{"", Target{}, true},
		{"-", Target{}, true},
		{"-rf", Target{}, true},
		{" web", Target{}, true},
		{"web ", Target{}, true},
		{"we\tb", Target{}, true},
		{"we\nb", Target{}, true},
		{"\x1b[31mred", Target{}, true},
		{"bad\xffutf8", Target{}, true},
		{strings.Repeat("a", MaxNameBytes), Target{Service: strings.Repeat("a", MaxNameBytes)}, false},
		{strings.Repeat("a", MaxNameBytes+1), Target{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseTarget(tc.in)
			if tc.err {
				if !errors.Is(err, ErrBadTarget) {
					t.Fatalf("got %+v, %v; want ErrBadTarget", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
			if got.String() != tc.in {
				t.Fatalf("String() = %q", got.String())
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		forever bool
		err     bool
	}{
		{"30m", 30 * time.Minute, false, false},
		{"90s", 90 * time.Second, false, false},
		{"forever", 0, true, false},
		{"8784h", MaxDuration, false, false},
		{"8784h1s", 0, false, true},
		{"0s", 0, false, true},
		{"-5m", 0, false, true},
		{"30", 0, false, true},
		{"Forever", 0, false, true},
		{"", 0, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			d, forever, err := ParseDuration(tc.in)
			if tc.err {
				if !errors.Is(err, ErrBadDuration) || !strings.Contains(err.Error(), `"`+tc.in+`"`) {
					t.Fatalf("got %v, want ErrBadDuration naming the input", err)
				}
				return
			}
			if err != nil || d != tc.want || forever != tc.forever {
				t.Fatalf("got %v %v %v", d, forever, err)
			}
		})
	}
}

func TestCheckReason(t *testing.T) {
	tests := []struct {
		in       string
		required bool
		ok       bool
	}{
		{"deploy 4711", true, true},
		{"", false, true},
		{"", true, false},
		{"tab\there", false, false},
		{"nl\nhere", false, false},
		{"esc\x1b[2J", false, false},
		{"\xff", false, false},
		{"déploiement ✓", true, true},
		{strings.Repeat("x", MaxReasonBytes), true, true},
		{strings.Repeat("x", MaxReasonBytes+1), true, false},
	}
	for _, tc := range tests {
		err := CheckReason(tc.in, tc.required)
		if (err == nil) != tc.ok {
			t.Errorf("CheckReason(%q, %v) = %v, want ok=%v", tc.in, tc.required, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadReason) {
			t.Errorf("CheckReason(%q): %v is not ErrBadReason", tc.in, err)
		}
	}
}

// clock is a settable wall clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newClock() *clock { return &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)} }

func open(t *testing.T, path string, c *clock) (*Store, LoadInfo) {
	t.Helper()
	s, info, err := Open(path, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	return s, info
}

func TestMatch(t *testing.T) {
	c := newClock()
	s, _ := open(t, "", c)
	put := func(target string, d time.Duration) {
		t.Helper()
		if _, err := s.Put(Entry{Target: target, Until: c.Now().Add(d), Reason: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	put("web", time.Minute)
	put("pid:42", 2*time.Minute)
	tests := []struct {
		service string
		pid     uint32
		want    string // target matched, "" for none
	}{
		{"web", 7, "web"},
		{"db", 42, "pid:42"},
		{"web", 42, "pid:42"},
		{"db", 7, ""},
		{"-", 7, ""},
		{"", 0, ""},
		{"all", 7, ""},    // a service literally named all does not match the all target by name
		{"pid:42", 7, ""}, // nor does a service spelled like a pid target
		{"Web", 7, ""},    // names are case-sensitive
	}
	check := func(when string) {
		for _, tc := range tests {
			e, ok := s.Match(tc.service, tc.pid)
			if tc.want == "" && ok || tc.want != "" && (!ok || e.Target != tc.want) {
				t.Errorf("%s: Match(%q, %d) = %+v, %v; want %q", when, tc.service, tc.pid, e, ok, tc.want)
			}
		}
	}
	check("before all")
	put("all", time.Hour)
	for i := range tests {
		if tests[i].want == "" {
			tests[i].want = "all"
		}
	}
	check("with all")
	c.Advance(90 * time.Second) // web ended, pid:42 and all still in force
	if e, ok := s.Match("web", 7); !ok || e.Target != "all" {
		t.Fatalf("after web ended: %+v %v", e, ok)
	}
	if e, ok := s.Match("web", 42); !ok || e.Target != "pid:42" {
		t.Fatalf("pid:42 should still be in force: %+v %v", e, ok)
	}
}

func TestPersistAcrossOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	c := newClock()
	s, _ := open(t, path, c)
	if _, err := s.Put(Entry{Target: "web", Until: c.Now().Add(30 * time.Minute), Reason: "deploy 4711", UID: 1001}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(Entry{Target: "pid:9", Forever: true, Reason: "broken"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(Entry{Target: "all", Until: c.Now().Add(time.Minute), Reason: "short"}); err != nil {
		t.Fatal(err)
	}
	if _, err := secretfile.Read(path); err != nil {
		t.Fatalf("state file breaks the secret-file rules: %v", err)
	}

	c.Advance(10 * time.Minute) // "all" ends while the daemon is down
	s2, info := open(t, path, c)
	if info.Loaded != 2 || info.Expired != 1 {
		t.Fatalf("load info %+v", info)
	}
	got := s2.List()
	if len(got) != 2 || got[0].Target != "pid:9" || !got[0].Forever || got[1].Target != "web" || got[1].UID != 1001 ||
		got[1].Reason != "deploy 4711" || !got[1].Until.Equal(newClock().Now().Add(30*time.Minute)) {
		t.Fatalf("reloaded %+v", got)
	}
	// The expired entry is gone from the file too.
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), `"all"`) {
		t.Fatalf("expired snooze still in the file:\n%s", b)
	}

	if e, ok, err := s2.Remove("web"); err != nil || !ok || e.Target != "web" {
		t.Fatalf("Remove: %+v %v %v", e, ok, err)
	}
	if _, ok, err := s2.Remove("web"); ok || err != nil {
		t.Fatalf("second Remove: %v %v", ok, err)
	}
	s3, _ := open(t, path, c)
	if l := s3.List(); len(l) != 1 || l[0].Target != "pid:9" {
		t.Fatalf("after resume: %+v", l)
	}
}

func TestExpire(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	c := newClock()
	s, _ := open(t, path, c)
	for _, tg := range []string{"a", "b"} {
		if _, err := s.Put(Entry{Target: tg, Until: c.Now().Add(time.Minute), Reason: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Put(Entry{Target: "c", Until: c.Now().Add(time.Hour), Reason: "r"}); err != nil {
		t.Fatal(err)
	}
	if gone, err := s.Expire(); err != nil || len(gone) != 0 {
		t.Fatalf("nothing due: %v %v", gone, err)
	}
	c.Advance(time.Minute) // Until is exclusive: at Until the snooze is over
	gone, err := s.Expire()
	if err != nil || len(gone) != 2 || gone[0].Target != "a" || gone[1].Target != "b" {
		t.Fatalf("Expire: %+v %v", gone, err)
	}
	if s.Len() != 1 {
		t.Fatalf("Len %d", s.Len())
	}
	s2, info := open(t, path, c)
	if info.Loaded != 1 || info.Expired != 0 || s2.List()[0].Target != "c" {
		t.Fatalf("file after Expire: %+v %+v", info, s2.List())
	}
}

func TestPutRefuses(t *testing.T) {
	c := newClock()
	s, _ := open(t, "", c)
	tests := []struct {
		name string
		e    Entry
		err  error
	}{
		{"bad target", Entry{Target: "-x", Forever: true}, ErrBadTarget},
		{"non-canonical target", Entry{Target: "pid:007", Forever: true}, ErrBadTarget},
		{"no end", Entry{Target: "web"}, ErrBadDuration},
		{"end and forever", Entry{Target: "web", Forever: true, Until: c.Now().Add(time.Hour)}, ErrBadDuration},
		{"already over", Entry{Target: "web", Until: c.Now()}, ErrBadDuration},
		{"control character in reason", Entry{Target: "web", Forever: true, Reason: "a\tb"}, ErrBadReason},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Put(tc.e); !errors.Is(err, tc.err) {
				t.Fatalf("got %v, want %v", err, tc.err)
			}
			if s.Len() != 0 {
				t.Fatal("refused entry was stored")
			}
		})
	}
}

func TestTooMany(t *testing.T) {
	c := newClock()
	s, _ := open(t, "", c)
	for i := range MaxEntries {
		if _, err := s.Put(Entry{Target: Target{Pid: uint32(i + 1)}.String(), Forever: true}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Put(Entry{Target: "one-more", Forever: true}); !errors.Is(err, ErrTooMany) {
		t.Fatalf("got %v", err)
	}
	// Replacing an existing one is allowed at the limit.
	if _, err := s.Put(Entry{Target: "pid:1", Until: c.Now().Add(time.Hour), Reason: "changed"}); err != nil {
		t.Fatal(err)
	}
}

// TestFailedWriteChangesNothing: when the state file cannot be written the
// change is refused and the in-memory state stays as it was.
func TestFailedWriteChangesNothing(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "state")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	c := newClock()
	s, _ := open(t, filepath.Join(sub, FileName), c)
	if _, err := s.Put(Entry{Target: "web", Forever: true}); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(sub); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(Entry{Target: "db", Forever: true}); err == nil {
		t.Fatal("Put succeeded without a state directory")
	}
	if _, _, err := s.Remove("web"); err == nil {
		t.Fatal("Remove succeeded without a state directory")
	}
	if l := s.List(); len(l) != 1 || l[0].Target != "web" {
		t.Fatalf("state changed by failed writes: %+v", l)
	}
}

func TestOpenRefuses(t *testing.T) {
	valid := `{"version":1,"snoozes":[{"target":"web","forever":true,"reason":"","uid":0,"since":"2026-05-01T12:00:00Z"}]}`
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		symlink bool
		want    string
	}{
		{"group-readable", valid, 0o640, false, "group/other"},
		{"another owner", valid, 0o600, false, "must be owned by uid"},
		{"symlink", valid, 0o600, true, "symlink"},
		{"not JSON", "snoozes: web", 0o600, false, "not a snooze state file"},
		{"trailing data", valid + "{}", 0o600, false, "data after"},
		{"unknown field", `{"version":1,"snoozes":[],"extra":1}`, 0o600, false, "unknown field"},
		{"version 2", `{"version":2,"snoozes":[]}`, 0o600, false, "version 2"},
		{"duplicate target", `{"version":1,"snoozes":[{"target":"web","forever":true,"reason":"","uid":0,"since":"2026-05-01T12:00:00Z"},{"target":"web","forever":true,"reason":"","uid":0,"since":"2026-05-01T12:00:00Z"}]}`, 0o600, false, "appears twice"},
		{"bad target", `{"version":1,"snoozes":[{"target":"-rf","forever":true,"reason":"","uid":0,"since":"2026-05-01T12:00:00Z"}]}`, 0o600, false, "snoozes[0]"},
		{"no end", `{"version":1,"snoozes":[{"target":"web","reason":"","uid":0,"since":"2026-05-01T12:00:00Z"}]}`, 0o600, false, "neither an end time nor forever"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, FileName)
			target := path
			if tc.symlink {
				target = filepath.Join(dir, "elsewhere")
				if err := os.Symlink(target, path); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(target, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(target, tc.mode); err != nil {
				t.Fatal(err)
			}
			if tc.name == "another owner" {
				if os.Geteuid() != 0 {
					t.Skip("needs root to give the file to another uid")
				}
				if err := os.Chown(target, 4242, 4242); err != nil {
					t.Fatal(err)
				}
			}
			_, _, err := Open(path, newClock().Now)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("got %v, want an error naming %s and %q", err, path, tc.want)
			}
		})
	}
}
