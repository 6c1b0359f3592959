package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-audit/internal/summary"
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

// TestShowAndSummarizeSayWhatIsUnknown: a complete record with no output
// says nothing was captured (not "0 B", which reads as "printed nothing"),
// and an agent without a timed recovery shows "-" for its durations.
func TestShowAndSummarizeSayWhatIsUnknown(t *testing.T) {
	complete := func(out, errLen uint64) audit.Record {
		return audit.Record{Seq: 3, Kind: audit.KindComplete, Complete: audit.CompleteRecord{WallclockMs: 1714564800000,
			AgentPid: 7, ChildPid: 8, Outcome: audit.OutcomeReaped, DurationNs: 2e9, StdoutLen: out, StderrLen: errLen}}
	}
	shows := []struct {
		rec  audit.Record
		want string
	}{
		{complete(0, 0), "exit 0 after 2s; no output captured"},
		{complete(12, 0), "exit 0 after 2s; stdout 12 B, stderr 0 B"},
		{complete(0, 2048), "exit 0 after 2s; stdout 0 B, stderr 2.0 KiB"},
	}
	for _, tc := range shows {
		var out bytes.Buffer
		l := NewLister(&out, Text, time.UTC)
		l.Add(audit.Position{File: "a", Line: 2}, &tc.rec)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), tc.want) {
			t.Errorf("show of %+v lacks %q:\n%s", tc.rec.Complete, tc.want, out.String())
		}
	}

	s := &summary.Summary{Path: "audit.log", Agents: []*summary.Agent{
		{Pid: 41, Stalls: 2, Refusals: map[string]uint64{"debounced": 2}},
		{Pid: 42, Stalls: 1, Spawns: 1, ReapedZero: 1, P50: 1500 * time.Millisecond, P95: 1500 * time.Millisecond, Max: 1500 * time.Millisecond},
	}}
	var out bytes.Buffer
	if err := Summary(&out, s, Text, time.UTC); err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{"41": "", "42": ""}
	for _, line := range strings.Split(out.String(), "\n") {
		f := strings.Fields(strings.NewReplacer("│", " ", "|", " ").Replace(line))
		if len(f) == 12 {
			if _, ok := rows[f[0]]; ok {
				rows[f[0]] = strings.Join(f[9:], " ")
			}
		}
	}
	if rows["41"] != "- - -" || rows["42"] != "1.5s 1.5s 1.5s" {
		t.Fatalf("durations: agent 41 %q (want \"- - -\"), agent 42 %q (want \"1.5s 1.5s 1.5s\"):\n%s", rows["41"], rows["42"], out.String())
	}
}
