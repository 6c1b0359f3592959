package audit

import (
	"errors"
	"strings"
	"testing"
)

func TestParseLineValid(t *testing.T) {
	tests := []struct {
		name string
		line string
		want Record
	}{
		{"boot fresh", "1\t1700000000000\t0\tboot\t1234\t-\tfresh\tea3737cc98db3db7f5be0f369c21b100c0eae318b0b050d67bb2ac80553435e8",
			Record{Seq: 1, Kind: KindBoot, Boot: BootRecord{WallclockMs: 1700000000000, DaemonPid: 1234, Reason: BootFresh},
				Chain: mustHash(t, "ea3737cc98db3db7f5be0f369c21b100c0eae318b0b050d67bb2ac80553435e8")}},
		{"spawn from a command file, unchained", "2\t5\t42\tspawn\t7\t9001\texec\t/usr/bin/restart agent\t/etc/varta/cmd\t22\t-",
			Record{Seq: 2, Kind: KindSpawn, Spawn: SpawnRecord{WallclockMs: 5, ObserverNs: 42, AgentPid: 7, ChildPid: 9001, Mode: ModeExec,
				Program: "/usr/bin/restart agent", Source: "/etc/varta/cmd", TemplateLen: 22}, Unchained: true}},
		{"complete by signal", "3\t5\t42\tcomplete\t7\t9001\tkilled\t-\t9\t100\t0\t4096\ttrue\t-",
			Record{Seq: 3, Kind: KindComplete, Complete: CompleteRecord{WallclockMs: 5, ObserverNs: 42, AgentPid: 7, ChildPid: 9001,
				Outcome: OutcomeKilled, ExitCode: NoExitCode, Signal: 9, DurationNs: 100, StderrLen: 4096, Truncated: true}, Unchained: true}},
		{"complete reap_failed", "4\t5\t42\tcomplete\t7\t9001\treap_failed\t-\t-\t0\t0\t0\tfalse\t-",
			Record{Seq: 4, Kind: KindComplete, Complete: CompleteRecord{WallclockMs: 5, ObserverNs: 42, AgentPid: 7, ChildPid: 9001,
				Outcome: OutcomeReapFailed, ExitCode: NoExitCode}, Unchained: true}},
		{"refused, max seq", "18446744073709551615\t5\t18446744073709551615\trefused\t4294967295\tsome future reason\t-",
			Record{Seq: 18446744073709551615, Kind: KindRefused, Refused: RefusedRecord{WallclockMs: 5, ObserverNs: 18446744073709551615,
				AgentPid: 4294967295, Reason: "some future reason"}, Unchained: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseLine([]byte(tc.line))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
			if enc := string(got.AppendLine(nil)); enc != tc.line+"\n" {
				t.Fatalf("re-encoded %q", enc)
			}
		})
	}
}

func TestParseLineErrors(t *testing.T) {
	const chain = "ea3737cc98db3db7f5be0f369c21b100c0eae318b0b050d67bb2ac80553435e8"
	tests := []struct {
		name   string
		line   string
		sent   error
		column int
		field  string
	}{
		{"empty", "", ErrColumnCount, -1, ""},
		{"three columns", "1\t2\t3", ErrColumnCount, -1, ""},
		{"unknown kind", "1\t2\t3\treboot\t5\t-", ErrUnknownKind, 3, "kind"},
		{"boot with 9 columns", "1\t2\t0\tboot\t5\t-\tfresh\tx\t" + chain, ErrColumnCount, -1, ""},
		{"refused with 6 columns", "1\t2\t3\trefused\t5\t-", ErrColumnCount, -1, ""},
		{"too many columns", "1\t2\t3\tcomplete" + strings.Repeat("\tx", 20), ErrColumnCount, -1, ""},
		{"seq leading zero", "01\t2\t3\trefused\t5\tdebounced\t-", ErrBadField, 0, "seq"},
		{"seq negative", "-1\t2\t3\trefused\t5\tdebounced\t-", ErrBadField, 0, "seq"},
		{"seq overflow", "18446744073709551616\t2\t3\trefused\t5\tdebounced\t-", ErrBadField, 0, "seq"},
		{"wallclock with sign", "1\t+2\t3\trefused\t5\tdebounced\t-", ErrBadField, 1, "wallclock_ms"},
		{"wallclock above int64", "1\t9223372036854775808\t3\trefused\t5\tdebounced\t-", ErrBadField, 1, "wallclock_ms"},
		{"boot observer_ns not 0", "1\t2\t3\tboot\t5\t-\tfresh\t-", ErrBadField, 2, "observer_ns"},
		{"boot prev_chain uppercase", "1\t2\t0\tboot\t5\t" + strings.ToUpper(chain) + "\tresume\t-", ErrBadField, 5, "prev_chain"},
		{"boot unknown reason", "1\t2\t0\tboot\t5\t-\treboot\t-", ErrBadField, 6, "reason"},
		{"daemon pid above u32", "1\t2\t0\tboot\t4294967296\t-\tfresh\t-", ErrBadField, 4, "daemon_pid"},
		{"spawn shell mode", "1\t2\t3\tspawn\t5\t6\tshell\t/bin/x\tinline\t3\t-", ErrBadField, 6, "mode"},
		{"spawn empty program", "1\t2\t3\tspawn\t5\t6\texec\t\tinline\t3\t-", ErrBadField, 7, "program"},
		{"spawn CR in source", "1\t2\t3\tspawn\t5\t6\texec\t/bin/x\tin\rline\t3\t-", ErrBadField, 8, "source"},
		{"spawn template_len text", "1\t2\t3\tspawn\t5\t6\texec\t/bin/x\tinline\tlots\t-", ErrBadField, 9, "template_len"},
		{"complete unknown outcome", "1\t2\t3\tcomplete\t5\t6\texited\t0\t-\t1\t0\t0\tfalse\t-", ErrBadField, 6, "outcome"},
		{"complete exit 256", "1\t2\t3\tcomplete\t5\t6\treaped\t256\t-\t1\t0\t0\tfalse\t-", ErrBadField, 7, "exit_code"},
		{"complete signal 0", "1\t2\t3\tcomplete\t5\t6\tkilled\t-\t0\t1\t0\t0\tfalse\t-", ErrBadField, 8, "signal"},
		{"complete code and signal", "1\t2\t3\tcomplete\t5\t6\treaped\t0\t9\t1\t0\t0\tfalse\t-", ErrBadField, 8, "signal"},
		{"complete reaped without either", "1\t2\t3\tcomplete\t5\t6\treaped\t-\t-\t1\t0\t0\tfalse\t-", ErrBadField, 7, "exit_code"},
		{"complete reap_failed with code", "1\t2\t3\tcomplete\t5\t6\treap_failed\t1\t-\t1\t0\t0\tfalse\t-", ErrBadField, 7, "exit_code"},
		{"complete truncated yes", "1\t2\t3\tcomplete\t5\t6\treaped\t0\t-\t1\t0\t0\tyes\t-", ErrBadField, 12, "truncated"},
		{"refused empty reason", "1\t2\t3\trefused\t5\t\t-", ErrBadField, 5, "reason"},
		{"chain short", "1\t2\t3\trefused\t5\tdebounced\tabc", ErrBadField, 6, "chain"},
		{"chain uppercase", "1\t2\t3\trefused\t5\tdebounced\t" + strings.ToUpper(chain), ErrBadField, 6, "chain"},
		{"chain CR (CRLF file)", "1\t2\t3\trefused\t5\tdebounced\t" + chain + "\r", ErrBadField, 6, "chain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseLine([]byte(tc.line))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("ParseLine = %v, want a *ParseError", err)
			}
			if !errors.Is(err, ErrMalformed) || !errors.Is(err, tc.sent) {
				t.Fatalf("error %v does not match ErrMalformed and %v", err, tc.sent)
			}
			if pe.Column != tc.column || pe.Field != tc.field {
				t.Fatalf("error %q names column %d (%s), want %d (%s)", err, pe.Column, pe.Field, tc.column, tc.field)
			}
			pe.Line = 12
			if !strings.HasPrefix(pe.Error(), "line 12") {
				t.Fatalf("error with a line: %q", pe.Error())
			}
		})
	}
}

func TestSanitize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/usr/bin/x", "/usr/bin/x"},
		{"a\tb\rc\nd", "a b c d"},
		{"\t\t", "  "},
	}
	for _, tc := range tests {
		if got := Sanitize(tc.in); got != tc.want {
			t.Errorf("Sanitize(%q) = %q, want %q", tc.in, got, tc.want)
		}
		r := Record{Seq: 1, Kind: KindRefused, Refused: RefusedRecord{Reason: tc.in}, Unchained: true}
		if got, err := ParseLine([]byte(strings.TrimSuffix(string(r.AppendLine(nil)), "\n"))); err != nil || got.Refused.Reason != tc.want {
			t.Errorf("reason %q encodes to %q (%v)", tc.in, got.Refused.Reason, err)
		}
	}
}

func TestParseHash(t *testing.T) {
	h, err := ParseHash("EA3737CC98DB3DB7F5BE0F369C21B100C0EAE318B0B050D67BB2AC80553435E8")
	if err != nil || h.String() != "ea3737cc98db3db7f5be0f369c21b100c0eae318b0b050d67bb2ac80553435e8" {
		t.Fatalf("ParseHash upper case: %v %v", h, err)
	}
	for _, bad := range []string{"", "ea37", strings.Repeat("g", 64)} {
		if _, err := ParseHash(bad); err == nil {
			t.Errorf("ParseHash(%q) accepted", bad)
		}
	}
}

// TestSplitLine checks the word-at-a-time splitter against bytes.Split,
// including bytes next to TABs that can fool the zero-byte trick.
func TestSplitLine(t *testing.T) {
	lines := []string{
		"", "\t", "a", "a\tb", "\t\t\t", "12345678\t12345678\t", "\x08\t\x08\t\x01\t\x09\x08",
		strings.Repeat("x\t", 13) + "tail", strings.Repeat("\t", 20), "1\t2\t3\trefused\t5\tdebounced\t-",
	}
	for _, l := range lines {
		var cols [maxColumns + 1][]byte
		n := splitLine([]byte(l), &cols)
		want := strings.Split(l, "\t")
		if len(want) > maxColumns {
			want = append(want[:maxColumns:maxColumns], strings.Join(want[maxColumns:], "\t"))
		}
		if n != len(want) {
			t.Fatalf("%q: %d columns, want %d", l, n, len(want))
		}
		for i := 0; i < n; i++ {
			if string(cols[i]) != want[i] {
				t.Fatalf("%q: column %d = %q, want %q", l, i, cols[i], want[i])
			}
		}
	}
}

func TestCanonicalUint(t *testing.T) {
	tests := []struct {
		in   string
		bits int
		want uint64
		ok   bool
	}{
		{"0", 64, 0, true}, {"7", 32, 7, true}, {"4294967295", 32, 4294967295, true}, {"4294967296", 32, 0, false},
		{"18446744073709551615", 64, 18446744073709551615, true}, {"18446744073709551616", 64, 0, false},
		{"99999999999999999999", 64, 0, false}, {"9223372036854775808", 63, 0, false}, {"9223372036854775807", 63, 9223372036854775807, true},
		{"", 64, 0, false}, {"00", 64, 0, false}, {"01", 64, 0, false}, {"+1", 64, 0, false}, {"1a", 64, 0, false}, {"1/", 64, 0, false},
		{"123456789012345678901", 64, 0, false},
	}
	for _, tc := range tests {
		got, ok := canonicalUint([]byte(tc.in), tc.bits)
		if got != tc.want || ok != tc.ok {
			t.Errorf("canonicalUint(%q, %d) = %d, %v; want %d, %v", tc.in, tc.bits, got, ok, tc.want, tc.ok)
		}
	}
}

// TestEnumColumnsRoundTrip checks that every boot reason and outcome
// docs/audit.md names parses back to itself, and that near misses do not.
func TestEnumColumnsRoundTrip(t *testing.T) {
	for _, want := range []BootReason{"fresh", "resume", "corrupt_tail", "schema_drift", "legacy_v1", "rotation"} {
		r, err := ParseLine([]byte("1\t2\t0\tboot\t5\t-\t" + string(want) + "\t-"))
		if err != nil || r.Boot.Reason != want {
			t.Errorf("boot reason %q: got %q, %v", want, r.Boot.Reason, err)
		}
	}
	for _, want := range []Outcome{"reaped", "killed", "reap_failed"} {
		code, sig := "0", "-"
		switch want {
		case "killed":
			code, sig = "-", "9"
		case "reap_failed":
			code = "-"
		}
		r, err := ParseLine([]byte("1\t2\t3\tcomplete\t5\t6\t" + string(want) + "\t" + code + "\t" + sig + "\t1\t0\t0\tfalse\t-"))
		if err != nil || r.Complete.Outcome != want {
			t.Errorf("outcome %q: got %q, %v", want, r.Complete.Outcome, err)
		}
	}
	for _, bad := range []string{"Fresh", "fres", "fresh ", ""} {
		if _, ok := bootReasonOf([]byte(bad)); ok {
			t.Errorf("boot reason %q accepted", bad)
		}
	}
	for _, bad := range []string{"Reaped", "reap", "reaped\x00", ""} {
		if _, ok := outcomeOf([]byte(bad)); ok {
			t.Errorf("outcome %q accepted", bad)
		}
	}
}
