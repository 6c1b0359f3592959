package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/varta-go/varta/pkg/audit"
)

func TestSafeEscapesTerminalControls(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/usr/bin/restart", "/usr/bin/restart"},
		{"/usr/bin/ünïcode", "/usr/bin/ünïcode"},
		{"\x1b[2J\x1b[31mred", `\x1b[2J\x1b[31mred`},
		{"bell\a", `bell\a`},
		{"bad\xffutf8", `bad\xffutf8`},
	}
	for _, tc := range tests {
		if got := safe(tc.in); got != tc.want {
			t.Errorf("safe(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestListerEscapesFields: a program name from the (untrusted) log cannot
// send escape sequences to the terminal through show.
func TestListerEscapesFields(t *testing.T) {
	var out bytes.Buffer
	l := NewLister(&out, Text, time.UTC)
	r := audit.Record{Seq: 9, Kind: audit.KindSpawn, Spawn: audit.SpawnRecord{WallclockMs: 1714564800000, AgentPid: 7, ChildPid: 8,
		Mode: audit.ModeExec, Program: "/bin/\x1b]0;pwned\x07x", Source: audit.SourceInline, TemplateLen: 3}}
	l.Add(audit.Position{File: "a", Line: 2}, &r)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsRune(out.String(), 0x1b) || !strings.Contains(out.String(), `/bin/\x1b]0;pwned\ax`) {
		t.Fatalf("escape sequence reached the output:\n%q", out.String())
	}
}

func TestListerJSON(t *testing.T) {
	var out bytes.Buffer
	l := NewLister(&out, JSON, time.UTC)
	if err := l.Close(); err != nil || out.String() != "[]\n" {
		t.Fatalf("empty JSON listing %q %v", out.String(), err)
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"text": Text, "json": JSON, "": Text} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseFormat("yaml"); err == nil {
		t.Error("ParseFormat(yaml) accepted")
	}
}

func TestDurationText(t *testing.T) {
	tests := map[time.Duration]string{0: "0s", 1500 * time.Millisecond: "1.5s", 1234567 * time.Nanosecond: "1.23ms", 999: "999ns"}
	for in, want := range tests {
		if got := durationText(in); got != want {
			t.Errorf("durationText(%v) = %q, want %q", in, got, want)
		}
	}
}
