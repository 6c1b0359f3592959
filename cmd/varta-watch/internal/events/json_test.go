package events

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/varta-go/varta/cmd/varta-watch/internal/identity"
	"github.com/varta-go/varta/pkg/vlp"
)

// wall is a fixed clock: observer_ns 0 is 2026-12-02T19:30:00Z.
func wall(ns uint64) time.Time {
	return time.Date(2026, 12, 2, 19, 30, 0, 0, time.UTC).Add(time.Duration(ns))
}

func TestGoldenJSON(t *testing.T) {
	web := &identity.Info{UID: 33, HasUID: true, Comm: "nginx", Exe: "/usr/sbin/nginx", Unit: "nginx.service",
		Container: identity.Unknown, Service: "web", Rule: 0}
	hostile := &identity.Info{UID: 1000, HasUID: true, Comm: "\"-rf\\\x01\u2028", Exe: identity.Unknown,
		Unit: "libpod-0123456789abcdef.scope", Container: "0123456789ab", Service: "x\xffy", Rule: -1}
	path := filepath.Join(t.TempDir(), "events.json")
	w := openT(t, Options{Path: path, Format: FormatJSON, Wall: wall}, nil)
	events := []Event{
		{Kind: KindBeat, Ns: 1000, Pid: 4242, Nonce: 1, Status: vlp.StatusOk, Ident: web},
		{Kind: KindBeat, Ns: 2000, Pid: 4243, Nonce: 2, Status: vlp.StatusCritical, Payload: 4294967295, Ident: hostile},
		{Kind: KindBeat, Ns: 2500, Pid: 9, Nonce: 3, Status: vlp.StatusDegraded, Payload: 1, Ident: identity.None},
		{Kind: KindDecode, Ns: 3600, Text: "BadCrc { expected: 1857092459, actual: 1873869675 }"},
		{Kind: KindIO, Ns: 3800, Text: "recvmsg: \"quoted\"\tand\\more\n"},
		{Kind: KindCtrunc, Ns: 3900},
		{Kind: KindMismatch, Ns: 4000, Pid: 666, Text: MismatchAuthFailure},
		{Kind: KindStall, Ns: 1500003000, Pid: 4242, Nonce: 1, Status: vlp.StatusStall, Ident: web},
		{Kind: KindGaveUp, Ns: 1600000000, Pid: 4242, Text: "web", Ident: web},
		{Kind: KindEviction, Ns: 9000000000, Pid: 4243},
	}
	for _, ev := range events {
		w.Emit(ev)
	}
	closeT(t, w)
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, got, "events.json.golden")

	// Every line is one JSON object with every key, and the values say
	// what the event said.
	keys := []string{"time", "observer_ns", "kind", "pid", "nonce", "status", "payload", "text", "service", "uid", "comm", "exe", "unit", "container"}
	ls := lines(string(got))
	if len(ls) != len(events) {
		t.Fatalf("%d lines for %d events", len(ls), len(events))
	}
	for i, l := range ls {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %d %q: %v", i, l, err)
		}
		if len(m) != len(keys) {
			t.Fatalf("line %d has %d keys, want %d", i, len(m), len(keys))
		}
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				t.Fatalf("line %d lacks %q", i, k)
			}
		}
		ev := events[i]
		ts, err := time.Parse(time.RFC3339Nano, m["time"].(string))
		if err != nil || !ts.Equal(wall(ev.Ns)) {
			t.Fatalf("line %d time %v (%v)", i, m["time"], err)
		}
		if m["kind"] != ev.Kind.String() || m["observer_ns"].(float64) != float64(ev.Ns) {
			t.Fatalf("line %d: %v", i, m)
		}
	}
	var hostileLine struct{ Comm, Service string }
	if err := json.Unmarshal([]byte(ls[1]), &hostileLine); err != nil || hostileLine.Comm != hostile.Comm || hostileLine.Service != "x\uFFFDy" {
		t.Fatalf("hostile comm round trip: %+v %v", hostileLine, err)
	}
}

// TestJSONStringMatchesEncodingJSON: for valid UTF-8 the escaper decodes to
// the input; for any input it produces valid JSON.
func TestJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "tab\there", "ctl\x00\x1f\x7f", `q"b\`, "ümlaut ✓", "\u2028\u2029", "bad\xff\xfe", "\xed\xa0\x80"} {
		b := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%q -> %s: %v", s, b, err)
		}
		if utf8.ValidString(s) && back != s {
			t.Fatalf("%q -> %s -> %q", s, b, back)
		}
		if bytes.ContainsAny(b, "\n\r") {
			t.Fatalf("%q -> %s holds a line break", s, b)
		}
	}
}

// TestJSONRotation: the JSON format follows the same rotation rule (a line
// never straddles two files).
func TestJSONRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.json")
	w := openT(t, Options{Path: path, Format: FormatJSON, Wall: wall, MaxBytes: MinMaxBytes}, nil)
	id := &identity.Info{HasUID: true, Comm: "a", Exe: "/a", Unit: "a.service", Container: identity.Unknown, Service: "a"}
	const n = 100
	for i := range n {
		ev := beat(i)
		ev.Ident = id
		w.Emit(ev)
	}
	closeT(t, w)
	files := []string{path}
	for g := 1; g <= Generations; g++ {
		if _, err := os.Stat(path + "." + string(rune('0'+g))); err == nil {
			files = append(files, path+"."+string(rune('0'+g)))
		}
	}
	if len(files) < 2 {
		t.Fatal("no rotation happened")
	}
	for _, p := range files {
		s := readFile(t, p)
		if int64(len(s)) > MinMaxBytes {
			t.Fatalf("%s is %d bytes", p, len(s))
		}
		for _, l := range lines(s) {
			if !json.Valid([]byte(l)) || !strings.HasSuffix(l, "}\n") {
				t.Fatalf("%s: torn line %q", p, l)
			}
		}
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"tsv": FormatTSV, "json": FormatJSON} {
		if f, err := ParseFormat(in); err != nil || f != want || f.String() != in {
			t.Errorf("%s: %v %v", in, f, err)
		}
	}
	if _, err := ParseFormat("JSON"); err == nil {
		t.Error("JSON accepted")
	}
	if _, err := Open(Options{Path: filepath.Join(t.TempDir(), "x"), Format: numFormats}, nil); err == nil {
		t.Error("unknown format accepted")
	}
}
