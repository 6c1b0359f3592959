package app

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/varta-go/varta/cmd/varta-watch/internal/events"
	"github.com/varta-go/varta/cmd/varta-watch/internal/observer"
	"github.com/varta-go/varta/cmd/varta-watch/internal/tracker"
)

// parse runs the real App over args with the environment env and returns
// the Options it would start the daemon with.
func parse(t *testing.T, env map[string]string, args ...string) (observer.Options, error) {
	t.Helper()
	a := New()
	a.Writer, a.ErrWriter = io.Discard, io.Discard
	var got observer.Options
	var perr error
	a.Action = func(c *cli.Context) error {
		got, perr = options(c, func(k string) string { return env[k] })
		return nil
	}
	if err := a.Run(append([]string{Name}, args...)); err != nil {
		return got, err
	}
	return got, perr
}

func TestParseSocketMode(t *testing.T) {
	for in, want := range map[string]os.FileMode{"600": 0o600, "0600": 0o600, "0o660": 0o660, "0O640": 0o640, "7": 0o7} {
		if got, err := ParseSocketMode(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	for _, in := range []string{"", "0o", "999", "1000", "rw-------", "-1"} {
		if _, err := ParseSocketMode(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestOptionsDefaultsAndDerivedValues(t *testing.T) {
	base := []string{"--socket", "/run/varta/v.sock", "--threshold-ms", "1500"}
	for _, tc := range []struct {
		name  string
		env   map[string]string
		args  []string
		check func(t *testing.T, o observer.Options)
	}{
		{"defaults", nil, nil, func(t *testing.T, o observer.Options) {
			if o.Threshold != 1500*time.Millisecond || o.TrackerCapacity != 4096 || o.Unix.Mode != 0o600 || o.Unix.RcvBuf != 1<<20 {
				t.Fatalf("%+v", o)
			}
			if o.GlobalBeatRate != 8192 || o.GlobalBeatBurst != 16384 || o.MaxBeatRate != 100 {
				t.Fatalf("rates %v %v %v", o.GlobalBeatRate, o.GlobalBeatBurst, o.MaxBeatRate)
			}
			if o.EvictionPolicy != tracker.Strict || o.Export != nil || o.Recovery != nil || o.Audit != nil || o.Prom != nil || o.UDP != nil {
				t.Fatalf("optional features on by default: %+v", o)
			}
			if o.SelfWatchdog != 0 || o.WatchdogInterval != 0 || o.ShutdownGrace != 5*time.Second || !o.PromPerPid || o.ClockJumpThreshold != 0 {
				t.Fatalf("%+v", o)
			}
		}},
		{"global rate follows capacity", nil, []string{"--tracker-capacity", "65536"}, func(t *testing.T, o observer.Options) {
			if o.GlobalBeatRate != 131072 || o.GlobalBeatBurst != 262144 {
				t.Fatalf("%v %v", o.GlobalBeatRate, o.GlobalBeatBurst)
			}
		}},
		{"explicit global rate off", nil, []string{"--global-beat-rate", "0"}, func(t *testing.T, o observer.Options) {
			if o.GlobalBeatRate != 0 {
				t.Fatal(o.GlobalBeatRate)
			}
		}},
		{"global burst 0 is off", nil, []string{"--global-beat-burst", "0"}, func(t *testing.T, o observer.Options) {
			if o.GlobalBeatRate != 0 || o.GlobalBeatBurst != 0 {
				t.Fatalf("rate %v burst %v, want the limiter off", o.GlobalBeatRate, o.GlobalBeatBurst)
			}
		}},
		{"prom burst 0 is off", nil, []string{"--prom-addr", "127.0.0.1:0", "--prom-token-file", "/t", "--prom-rate-limit-burst", "0"}, func(t *testing.T, o observer.Options) {
			if o.Prom == nil || o.Prom.RateLimitBurst != 0 || o.Prom.RateLimitPerSec != 5 {
				t.Fatalf("%+v", o.Prom)
			}
		}},
		{"self-watchdog at its 1 s minimum", nil, []string{"--self-watchdog-secs", "1"}, func(t *testing.T, o observer.Options) {
			if o.SelfWatchdog != time.Second {
				t.Fatal(o.SelfWatchdog)
			}
		}},
		{"systemd watchdog", map[string]string{"WATCHDOG_USEC": "2000000", "NOTIFY_SOCKET": "@sd"}, nil, func(t *testing.T, o observer.Options) {
			if o.WatchdogInterval != 2*time.Second/3 || o.SelfWatchdog != 4*time.Second || o.NotifySocket != "@sd" {
				t.Fatalf("%+v", o)
			}
		}},
		{"watchdog for another pid", map[string]string{"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}, nil, func(t *testing.T, o observer.Options) {
			if o.WatchdogInterval != 0 || o.SelfWatchdog != 0 {
				t.Fatalf("%+v", o)
			}
		}},
		{"explicit self-watchdog off", map[string]string{"WATCHDOG_USEC": "2000000"}, []string{"--self-watchdog-secs", "0"}, func(t *testing.T, o observer.Options) {
			if o.SelfWatchdog != 0 {
				t.Fatal(o.SelfWatchdog)
			}
		}},
		{"recovery command", nil, []string{"--recovery-exec", "/usr/bin/restart  --pid={pid}  x", "--recovery-debounce-ms", "0", "--tracker-capacity", "10"}, func(t *testing.T, o observer.Options) {
			r := o.Recovery
			if r == nil || r.Program != "/usr/bin/restart" || strings.Join(r.Args, "|") != "--pid={pid}|x" || r.Source != "inline" {
				t.Fatalf("%+v", r)
			}
			if r.Debounce != 0 || !r.DebounceOff || r.OutstandingCapacity != 10 || r.CaptureBytes != 4096 {
				t.Fatalf("%+v", r)
			}
		}},
		{"recovery timeout 0 is never", nil, []string{"--recovery-exec", "/usr/bin/restart", "--recovery-timeout-ms", "0"}, func(t *testing.T, o observer.Options) {
			if r := o.Recovery; r == nil || r.Timeout != 0 {
				t.Fatalf("%+v", r)
			}
		}},
		{"recovery debounce on by default", nil, []string{"--recovery-exec", "/usr/bin/restart"}, func(t *testing.T, o observer.Options) {
			if r := o.Recovery; r == nil || r.Debounce != time.Second || r.DebounceOff {
				t.Fatalf("%+v", r)
			}
		}},
		{"secure udp defaults to loopback", nil, []string{"--udp-port", "7000", "--key-file", "/k"}, func(t *testing.T, o observer.Options) {
			if o.UDP == nil || o.UDP.Addr != "127.0.0.1:7000" || o.UDP.AcceptRecovery {
				t.Fatalf("%+v", o.UDP)
			}
		}},
		{"clock-jump threshold for tests", nil, []string{"--test-clock-jump-ms", "2000"}, func(t *testing.T, o observer.Options) {
			if o.ClockJumpThreshold != 2*time.Second {
				t.Fatal(o.ClockJumpThreshold)
			}
		}},
		{"plain udp defaults to all addresses", nil, []string{"--udp-port", "7000", "--i-accept-plaintext-udp"}, func(t *testing.T, o observer.Options) {
			if o.UDP == nil || o.UDP.Addr != "0.0.0.0:7000" || o.UDP.Secure() {
				t.Fatalf("%+v", o.UDP)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parse(t, tc.env, append(append([]string{}, base...), tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, o)
		})
	}
}

// TestClockJumpFlagBounds: the hidden test flag is range-checked like
// the others, and is neither in the help nor read from the environment.
func TestClockJumpFlagBounds(t *testing.T) {
	base := []string{"--socket", "/run/varta/v.sock", "--threshold-ms", "1500"}
	for _, v := range []string{"0", "99", "3600001"} {
		if _, err := parse(t, nil, append(base, "--test-clock-jump-ms", v)...); err == nil || !strings.Contains(err.Error(), "--test-clock-jump-ms "+v+": must be between 100 and 3600000") {
			t.Errorf("--test-clock-jump-ms %s: %v", v, err)
		}
	}
	o, err := parse(t, map[string]string{"VARTA_WATCH_TEST_CLOCK_JUMP_MS": "100"}, base...)
	if err != nil || o.ClockJumpThreshold != 0 {
		t.Fatalf("threshold %v from the environment (%v)", o.ClockJumpThreshold, err)
	}
	a := New()
	var help strings.Builder
	a.Writer = &help
	if err := a.Run([]string{Name, "--help"}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(help.String(), "test-clock-jump") {
		t.Fatal("the test flag is in --help")
	}
}

func TestFlagsFromEnvironment(t *testing.T) {
	t.Setenv("VARTA_WATCH_SOCKET", "/tmp/x.sock")
	t.Setenv("VARTA_WATCH_THRESHOLD_MS", "250")
	t.Setenv("VARTA_WATCH_TRACKER_EVICTION_POLICY", "balanced")
	o, err := parse(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.Unix.Path != "/tmp/x.sock" || o.Threshold != 250*time.Millisecond || o.EvictionPolicy != tracker.Balanced {
		t.Fatalf("%+v", o)
	}
}

func TestPolicyOptions(t *testing.T) {
	pol := filepath.Join(t.TempDir(), "policy.yml")
	if err := os.WriteFile(pol, []byte("rules:\n  - {name: web, match: {unit: nginx.service}, recovery: [/bin/systemctl, restart, \"{unit}\"]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"--socket", "/run/varta/v.sock", "--threshold-ms", "1500"}
	o, err := parse(t, nil, append(base, "--policy-file", pol, "--recovery-timeout-ms", "5000", "--recovery-retry-ms", "2500",
		"--prom-max-services", "7", "--export-file", "-", "--export-format", "json")...)
	if err != nil {
		t.Fatal(err)
	}
	if o.PolicyFile != pol || o.Policy == nil || len(o.Policy.Rules) != 1 || o.RecoveryRetry != 2500*time.Millisecond || o.PromMaxServices != 7 {
		t.Fatalf("%+v", o)
	}
	// The policy gives programs of its own: the recovery flags apply to them.
	if o.Recovery == nil || o.Recovery.Program != "" || o.Recovery.Timeout != 5*time.Second || o.RecoveryExecFile != "" {
		t.Fatalf("recovery %+v", o.Recovery)
	}
	if o.Export == nil || o.Export.Format != events.FormatJSON {
		t.Fatalf("export %+v", o.Export)
	}
	if _, err := parse(t, nil, append(base, "--export-format", "json")...); err == nil {
		t.Fatal("--export-format without --export-file accepted")
	}
	if _, err := parse(t, nil, append(base, "--export-file", "-", "--export-format", "xml")...); err == nil {
		t.Fatal("--export-format xml accepted")
	}
	if _, err := parse(t, nil, append(base, "--prom-max-services", "0")...); err == nil {
		t.Fatal("--prom-max-services 0 accepted")
	}
}

// TestIntFlagBounds walks every integer flag: flags() has no integer flag
// without bounds, each default (unless computed) is within them, the
// bounds themselves are accepted, and one past either bound is refused
// with an error naming the flag and the rule.
func TestIntFlagBounds(t *testing.T) {
	bounded := map[string]*intFlag{}
	for _, f := range intFlags {
		bounded[f.name] = f
	}
	for _, fl := range flags() {
		if f, ok := fl.(*cli.Int64Flag); ok && bounded[f.Name] == nil {
			t.Errorf("--%s has no bounds (define it as an intFlag)", f.Name)
		}
	}
	for _, f := range intFlags {
		if f.defText == "" && !f.hidden { // a hidden test flag is read only when set
			if err := f.check(f.def); err != nil {
				t.Errorf("--%s: default %d out of its bounds: %v", f.name, f.def, err)
			}
		}
		for _, v := range []int64{f.min, f.max} {
			if err := f.check(v); err != nil {
				t.Errorf("--%s %d refused: %v", f.name, v, err)
			}
		}
		if f.orZero {
			if err := f.check(0); err != nil {
				t.Errorf("--%s 0 (off) refused: %v", f.name, err)
			}
		}
		var bad []int64
		if below := f.min - 1; !(f.orZero && below == 0) {
			bad = append(bad, below)
		}
		if f.orZero && f.min > 1 {
			bad = append(bad, 1)
		}
		if f.max < maxInt64 {
			bad = append(bad, f.max+1)
		}
		for _, v := range bad {
			err := f.check(v)
			if err == nil {
				t.Errorf("--%s %d accepted", f.name, v)
				continue
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, fmt.Sprintf("--%s %d: must be ", f.name, v)) || !strings.Contains(msg, strconv.FormatInt(f.min, 10)) {
				t.Errorf("--%s %d: error %q does not name the flag, the value and the rule", f.name, v, msg)
			}
		}
	}
}

// TestFlagBoundsErrors: a value out of bounds reaches the operator as the
// flag's rule, through the real App (the daemon exits 2 with it).
func TestFlagBoundsErrors(t *testing.T) {
	base := []string{"--socket", "/run/varta/v.sock", "--threshold-ms", "1500"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--threshold-ms", "9"}, "--threshold-ms 9: must be between 10 and "},
		{[]string{"--tracker-capacity", "0"}, "--tracker-capacity 0: must be between 1 and 1048576"},
		{[]string{"--export-file", "/tmp/e", "--export-file-max-bytes", "100"}, "--export-file-max-bytes 100: must be 0 or >= 4096"},
		{[]string{"--recovery-exec", "/bin/true", "--recovery-audit-file", "/tmp/a", "--recovery-audit-max-bytes", "-1"}, "--recovery-audit-max-bytes -1: must be 0 or >= 4096"},
		{[]string{"--recovery-exec", "/bin/true", "--recovery-debounce-ms", "-1"}, "--recovery-debounce-ms -1: must be between 0 and 86400000"},
		{[]string{"--recovery-exec", "/bin/true", "--recovery-timeout-ms", "99"}, "--recovery-timeout-ms 99: must be 0 or between 100 and 86400000"},
		{[]string{"--self-watchdog-secs", "86401"}, "--self-watchdog-secs 86401: must be between 0 and 86400"},
		{[]string{"--udp-port", "65536"}, "--udp-port 65536: must be between 0 and 65535"},
		{[]string{"--prom-max-services", "0"}, "--prom-max-services 0: must be between 1 and 1000000"},
	} {
		_, err := parse(t, nil, append(append([]string{}, base...), tc.args...)...)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.args, err, tc.want)
		}
	}
}
