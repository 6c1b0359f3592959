package recovery

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
)

func TestParseCommand(t *testing.T) {
	for _, tc := range []struct {
		in      string
		program string
		args    []string
		err     error
	}{
		{"/usr/bin/systemctl restart app@{pid}", "/usr/bin/systemctl", []string{"restart", "app@{pid}"}, nil},
		{"  prog \t a\n b  ", "prog", []string{"a", "b"}, nil},
		{"prog", "prog", []string{}, nil},
		{`prog "a b" 'c'`, "prog", []string{`"a`, `b"`, `'c'`}, nil}, // no quoting
		{`prog a\ b`, "prog", []string{`a\`, "b"}, nil},              // no escaping
		{"", "", nil, ErrEmptyCommand},
		{" \t\n", "", nil, ErrEmptyCommand},
		{"prog a\x00b", "", nil, ErrInvalidCommand},
	} {
		t.Run(tc.in, func(t *testing.T) {
			p, a, err := ParseCommand(tc.in)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err == nil && (p != tc.program || !reflect.DeepEqual(a, tc.args)) {
				t.Fatalf("got %q %q, want %q %q", p, a, tc.program, tc.args)
			}
		})
	}
}

func TestValidateEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		kv      []string
		wantErr string // substring; "" = valid
	}{
		{"valid", []string{"A=1", "B=", "C=x=y", "PATH=/opt/bin"}, ""},
		{"no equals", []string{"A=1", "JUSTKEY"}, `entry 2 ("JUSTKEY") has no '='`},
		{"empty key", []string{"=value"}, "entry 1 has an empty key"},
		{"NUL in key", []string{"A\x00B=1"}, "entry 1 has a NUL byte in its key"},
		{"NUL in value, value not echoed", []string{"TOKEN=sec\x00ret"}, `entry 1 ("TOKEN") has a NUL byte in its value`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateEnv(tc.kv)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidEnv) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want ErrInvalidEnv with %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "sec") {
				t.Fatal("the error leaks the value")
			}
		})
	}
}

func TestNewOptions(t *testing.T) {
	base := Options{Program: "/bin/true"}
	for _, tc := range []struct {
		name string
		mod  func(*Options)
		err  error
		chk  func(t *testing.T, o Options)
	}{
		{name: "defaults", chk: func(t *testing.T, o Options) {
			want := Options{Program: "/bin/true", Source: "inline", CaptureBytes: 4096, Debounce: time.Second,
				LedgerCapacity: 4096, OutstandingCapacity: 4096, SpawnRate: 16, SpawnBurst: 16, MaxReapsPerTick: 64, MaxDecisionsPerTick: 256}
			if !reflect.DeepEqual(o, want) {
				t.Fatalf("%+v", o)
			}
		}},
		{name: "empty program", mod: func(o *Options) { o.Program = "" }, err: ErrEmptyCommand},
		{name: "NUL in argument", mod: func(o *Options) { o.Args = []string{"a\x00"} }, err: ErrInvalidCommand},
		{name: "bad env", mod: func(o *Options) { o.Env = []string{"=x"} }, err: ErrInvalidEnv},
		{name: "capture too large", mod: func(o *Options) { o.CaptureBytes = MaxCaptureBytes + 1 }, err: ErrInvalidOptions},
		{name: "capture max", mod: func(o *Options) { o.CaptureBytes = MaxCaptureBytes }},
		{name: "negative capture", mod: func(o *Options) { o.CaptureBytes = -1 }, err: ErrInvalidOptions},
		{name: "timeout below 100ms", mod: func(o *Options) { o.Timeout = 99 * time.Millisecond }, err: ErrInvalidOptions},
		{name: "negative debounce", mod: func(o *Options) { o.Debounce = -1 }, err: ErrInvalidOptions},
		{name: "debounce off", mod: func(o *Options) { o.DebounceOff = true },
			chk: func(t *testing.T, o Options) {
				if o.Debounce != 0 || !o.DebounceOff {
					t.Fatalf("debounce %v off %v: the default was applied", o.Debounce, o.DebounceOff)
				}
			}},
		{name: "debounce off with a window", mod: func(o *Options) { o.DebounceOff, o.Debounce = true, time.Second }, err: ErrInvalidOptions},
		{name: "negative ledger", mod: func(o *Options) { o.LedgerCapacity = -1 }, err: ErrInvalidOptions},
		{name: "outstanding above tracker max", mod: func(o *Options) { o.OutstandingCapacity = MaxOutstandingCapacity + 1 }, err: ErrInvalidOptions},
		{name: "file source kept", mod: func(o *Options) { o.Source = "/etc/varta/recovery" },
			chk: func(t *testing.T, o Options) {
				if o.Source != "/etc/varta/recovery" {
					t.Fatal(o.Source)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			if tc.mod != nil {
				tc.mod(&o)
			}
			r, err := New(o, newFakeVerifier(), NopAuditor{}, stats.New(), (&fakeClock{}).now)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err == nil && tc.chk != nil {
				tc.chk(t, r.opts)
			}
		})
	}
	t.Run("missing collaborators", func(t *testing.T) {
		if _, err := New(base, nil, NopAuditor{}, stats.New(), (&fakeClock{}).now); !errors.Is(err, ErrInvalidOptions) {
			t.Fatalf("nil verifier: %v", err)
		}
	})
}

func TestBuildArgv(t *testing.T) {
	argv, n := buildArgv("{pid}prog", []string{"", "{pid}", "{{pid}}"}, 0)
	want := []string{"{pid}prog", "", "0", "{0}"} // the program is never substituted
	if !reflect.DeepEqual(argv, want) || n != len(strings.Join(want, " ")) {
		t.Fatalf("%q %d", argv, n)
	}
}
