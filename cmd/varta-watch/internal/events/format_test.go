package events

import (
	"strings"
	"testing"

	"github.com/varta-go/varta/pkg/vlp"
)

func TestAppendLine(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		want string
	}{
		{"beat ok", Event{Kind: KindBeat, Ns: 1500000, Pid: 4242, Nonce: 7, Status: vlp.StatusOk, Payload: 0},
			"1500000\tbeat\t4242\t7\tok\t0\n"},
		{"beat degraded", Event{Kind: KindBeat, Ns: 1, Pid: 1, Nonce: 1, Status: vlp.StatusDegraded, Payload: 17},
			"1\tbeat\t1\t1\tdegraded\t17\n"},
		{"beat critical max values", Event{Kind: KindBeat, Ns: 1<<64 - 1, Pid: 1<<32 - 1, Nonce: 1<<64 - 1, Status: vlp.StatusCritical, Payload: 1<<32 - 1},
			"18446744073709551615\tbeat\t4294967295\t18446744073709551615\tcritical\t4294967295\n"},
		{"beat pid 0", Event{Kind: KindBeat, Ns: 0, Pid: 0, Nonce: 3, Status: vlp.StatusOk, Payload: 9},
			"0\tbeat\t-\t3\tok\t9\n"},
		{"beat ignores text", Event{Kind: KindBeat, Ns: 5, Pid: 2, Nonce: 3, Text: "x\ty"},
			"5\tbeat\t2\t3\tok\t0\n"},
		{"stall", Event{Kind: KindStall, Ns: 2000000000, Pid: 4242, Nonce: 9, Status: vlp.StatusStall, Payload: 5},
			"2000000000\tstall\t4242\t9\tstall\t-\n"},
		{"stall status column is always stall", Event{Kind: KindStall, Ns: 3, Pid: 8, Nonce: 0, Status: vlp.StatusOk},
			"3\tstall\t8\t0\tstall\t-\n"},
		{"decode", Event{Kind: KindDecode, Ns: 10, Pid: 99, Nonce: 5, Text: "BadCrc { expected: 1857092459, actual: 1873869675 }"},
			"10\tdecode\t-\t-\t-\tBadCrc { expected: 1857092459, actual: 1873869675 }\n"},
		{"decode bad nonce", Event{Kind: KindDecode, Ns: 11, Text: "BadNonce { nonce: 18446744073709551615, status: Ok }"},
			"11\tdecode\t-\t-\t-\tBadNonce { nonce: 18446744073709551615, status: Ok }\n"},
		{"io", Event{Kind: KindIO, Ns: 12, Text: "recvmsg: no buffer space available"},
			"12\tio\t-\t-\t-\trecvmsg: no buffer space available\n"},
		{"io escaped", Event{Kind: KindIO, Ns: 12, Text: "a\tb\nc"},
			"12\tio\t-\t-\t-\ta\\tb\\nc\n"},
		{"ctrunc", Event{Kind: KindCtrunc, Ns: 13, Text: "control message truncated (MSG_CTRUNC)"},
			"13\tctrunc\t-\t-\t-\tcontrol message truncated (MSG_CTRUNC)\n"},
		{"empty text", Event{Kind: KindIO, Ns: 14},
			"14\tio\t-\t-\t-\t-\n"},
		{"mismatch auth", Event{Kind: KindMismatch, Ns: 15, Pid: 31337, Nonce: 4, Text: MismatchAuthFailure},
			"15\tmismatch\t31337\t-\t-\tauth_failure\n"},
		{"mismatch origin", Event{Kind: KindMismatch, Ns: 16, Pid: 7, Text: MismatchOriginConflict},
			"16\tmismatch\t7\t-\t-\torigin_conflict\n"},
		{"mismatch namespace", Event{Kind: KindMismatch, Ns: 17, Pid: 7, Text: MismatchNamespaceConflict},
			"17\tmismatch\t7\t-\t-\tnamespace_conflict\n"},
		{"eviction", Event{Kind: KindEviction, Ns: 18, Pid: 1234, Nonce: 5, Text: "ignored"},
			"18\teviction\t1234\t-\t-\t-\n"},
		{"gave_up", Event{Kind: KindGaveUp, Ns: 19, Pid: 42, Nonce: 5, Text: "web"},
			"19\tgave_up\t42\t-\t-\tweb\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(appendLine(nil, &tt.ev))
			if got != tt.want {
				t.Fatalf("appendLine:\n got %q\nwant %q", got, tt.want)
			}
			if n := strings.Count(got, "\t"); n != 5 {
				t.Fatalf("line has %d TABs, want 5 (six columns)", n)
			}
		})
	}
}

func TestAppendTextEscaping(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "BadMagic", "BadMagic"},
		{"empty", "", "-"},
		{"backslash", `a\b`, `a\\b`},
		{"tab", "a\tb", `a\tb`},
		{"lf", "a\nb", `a\nb`},
		{"cr", "a\rb", `a\rb`},
		{"nul", "a\x00b", `a\x00b`},
		{"escape", "\x1b[31m", `\x1b[31m`},
		{"unit separator", "\x1f", `\x1f`},
		{"del", "\x7f", `\x7f`},
		{"space and tilde kept", " ~", " ~"},
		{"utf-8 kept", "héllo ✓", "héllo ✓"},
		{"high bytes kept", "\x80\xff", "\x80\xff"},
		{"escaped backslash before n", "\\n", `\\n`},
		{"all together", "\\\t\n\r\x01", `\\\t\n\r\x01`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(appendText(nil, tt.in)); got != tt.want {
				t.Fatalf("appendText(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestKindString(t *testing.T) {
	tests := []struct {
		k    Kind
		want string
	}{
		{KindBeat, "beat"}, {KindStall, "stall"}, {KindDecode, "decode"}, {KindIO, "io"},
		{KindCtrunc, "ctrunc"}, {KindMismatch, "mismatch"}, {KindEviction, "eviction"}, {numKinds, "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.k.String(); got != tt.want {
				t.Fatalf("Kind(%d).String() = %q, want %q", tt.k, got, tt.want)
			}
		})
	}
}

func TestAppendLineNoAlloc(t *testing.T) {
	buf := make([]byte, 0, 256)
	ev := Event{Kind: KindBeat, Ns: 123456789, Pid: 4242, Nonce: 99, Status: vlp.StatusDegraded, Payload: 7}
	if n := testing.AllocsPerRun(1000, func() { buf = appendLine(buf[:0], &ev) }); n != 0 {
		t.Fatalf("appendLine allocates %.1f times per line, want 0", n)
	}
}
