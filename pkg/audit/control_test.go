package audit

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestControlRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		rec  ControlRecord
		line string // the body after "seq\twall\tobs\tcontrol\t"
	}{
		{"snooze with an end", ControlRecord{WallclockMs: 5, ObserverNs: 42, UID: 0, Action: ControlSnooze, Target: "web", UntilMs: 1700000001800, Reason: "deploy 4711"},
			"0\tsnooze\tweb\t1700000001800\tdeploy 4711"},
		{"snooze forever", ControlRecord{WallclockMs: 5, ObserverNs: 42, UID: 1001, Action: ControlSnooze, Target: "pid:77", Forever: true, Reason: "broken disk"},
			"1001\tsnooze\tpid:77\tforever\tbroken disk"},
		{"resume without reason", ControlRecord{WallclockMs: 5, ObserverNs: 42, UID: 4294967295, Action: ControlResume, Target: "all"},
			"4294967295\tresume\tall\t-\t-"},
		{"reload result", ControlRecord{WallclockMs: 5, ObserverNs: 42, UID: 0, Action: ControlReload, Reason: "ok"},
			"0\treload\t-\t-\tok"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Record{Seq: 9, Kind: KindControl, Control: tc.rec, Unchained: true}
			want := "9\t5\t42\tcontrol\t" + tc.line + "\t-\n"
			if got := string(r.AppendLine(nil)); got != want {
				t.Fatalf("encoded %q, want %q", got, want)
			}
			got, err := ParseLine([]byte(strings.TrimSuffix(want, "\n")))
			if err != nil {
				t.Fatal(err)
			}
			if got != r {
				t.Fatalf("parsed %+v, want %+v", got, r)
			}
			if err := Validate(r); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestControlRecordSanitized(t *testing.T) {
	r := Record{Seq: 1, Kind: KindControl, Unchained: true, Control: ControlRecord{WallclockMs: 1, Action: ControlSnooze,
		Target: "we\tb", Reason: "line one\nline two\r\tx"}}
	got := string(r.AppendLine(nil))
	want := "1\t1\t0\tcontrol\t0\tsnooze\twe b\t-\tline one line two  x\t-\n"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if err := Validate(r); err != nil {
		t.Fatal(err)
	}
}

func TestControlRecordParseErrors(t *testing.T) {
	tests := []struct {
		name   string
		line   string
		column int
		field  string
		sent   error
	}{
		{"9 columns", "1\t2\t3\tcontrol\t0\tsnooze\tweb\t-\t-", -1, "", ErrColumnCount},
		{"uid above u32", "1\t2\t3\tcontrol\t4294967296\tsnooze\tweb\t-\t-\t-", 4, "uid", ErrBadField},
		{"empty action", "1\t2\t3\tcontrol\t0\t\tweb\t-\t-\t-", 5, "action", ErrBadField},
		{"CR in target", "1\t2\t3\tcontrol\t0\tsnooze\tw\reb\t-\t-\t-", 6, "target", ErrBadField},
		{"until zero", "1\t2\t3\tcontrol\t0\tsnooze\tweb\t0\t-\t-", 7, "until", ErrBadField},
		{"until with sign", "1\t2\t3\tcontrol\t0\tsnooze\tweb\t+5\t-\t-", 7, "until", ErrBadField},
		{"until word", "1\t2\t3\tcontrol\t0\tsnooze\tweb\tnever\t-\t-", 7, "until", ErrBadField},
		{"empty reason", "1\t2\t3\tcontrol\t0\tsnooze\tweb\t-\t\t-", 8, "reason", ErrBadField},
		{"chain uppercase", "1\t2\t3\tcontrol\t0\tsnooze\tweb\t-\t-\tEA3737CC98DB3DB7F5BE0F369C21B100C0EAE318B0B050D67BB2AC80553435E8", 9, "chain", ErrBadField},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseLine([]byte(tc.line))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("want a ParseError, got %v", err)
			}
			if pe.Column != tc.column || pe.Field != tc.field || !errors.Is(err, tc.sent) {
				t.Fatalf("got column %d (%s) %v, want column %d (%s) %v", pe.Column, pe.Field, err, tc.column, tc.field, tc.sent)
			}
		})
	}
}

// TestVerifyControlRecords: a log with control records between the
// recovery records verifies, and altering any column of a control record
// (or only its chain) is reported as tamper at that record.
func TestVerifyControlRecords(t *testing.T) {
	build := func(t *testing.T) (string, []int) {
		path := logPath(t)
		w := openWriter(t, Options{Path: path})
		writeCycles(t, w, 0, 4)
		if !w.Control(ControlRecord{ObserverNs: 7, UID: 0, Action: ControlSnooze, Target: "web", UntilMs: 1700000000000, Reason: "deploy 4711"}) {
			t.Fatal("control record refused")
		}
		writeCycles(t, w, 4, 3)
		if !w.Control(ControlRecord{ObserverNs: 8, UID: 1001, Action: ControlResume, Target: "web"}) {
			t.Fatal("control record refused")
		}
		if !w.Control(ControlRecord{ObserverNs: 9, Action: ControlReload, Reason: "ok"}) {
			t.Fatal("control record refused")
		}
		writeCycles(t, w, 7, 2)
		closeWriter(t, w)
		var lines []int
		for i, l := range readLines(t, path) {
			if bytes.Contains(l, []byte("\tcontrol\t")) {
				lines = append(lines, i+1)
			}
		}
		if len(lines) != 3 {
			t.Fatalf("want 3 control lines, got %v", lines)
		}
		return path, lines
	}
	t.Run("intact", func(t *testing.T) {
		path, _ := build(t)
		rep := verify(t, path, VerifyOptions{})
		requireIntact(t, rep)
		if rep.Records != 1+4+3+2+3 {
			t.Fatalf("records %d", rep.Records)
		}
	})
	edits := []struct {
		name string
		col  int
		to   string
		what string
	}{
		{"uid", 4, "4242", "chain mismatch"},
		{"action", 5, "resume", "chain mismatch"},
		{"target", 6, "all", "chain mismatch"},
		{"until", 7, "forever", "chain mismatch"},
		{"reason", 8, "nothing to see", "chain mismatch"},
		{"chain only", 9, strings.Repeat("ab", 32), "chain value altered"},
	}
	for _, e := range edits {
		for which := range 3 {
			t.Run(e.name, func(t *testing.T) {
				path, lines := build(t)
				line := lines[which]
				seq := seqAt(t, path, line)
				editLine(t, path, line, func(cols [][]byte) [][]byte {
					if string(cols[e.col]) == e.to {
						cols[e.col] = []byte(e.to + "x")
					} else {
						cols[e.col] = []byte(e.to)
					}
					return cols
				})
				rep := verify(t, path, VerifyOptions{})
				if rep.Intact() || len(rep.Breaks) == 0 {
					t.Fatalf("altered %s of line %d verified:\n%s", e.name, line, dumpReport(rep))
				}
				b := rep.Breaks[0]
				if b.Kind != BreakTamper || b.Seq != seq || b.Line != line || !strings.Contains(b.What, e.what) {
					t.Fatalf("first break %+v, want tamper %q at line %d seq %d", b, e.what, line, seq)
				}
			})
		}
	}
}

// TestNoControlRecordsStaysV2: a writer that never gets a control record
// writes no line that mentions the kind (the log stays plain schema v2).
func TestNoControlRecordsStaysV2(t *testing.T) {
	path := logPath(t)
	w := openWriter(t, Options{Path: path})
	writeCycles(t, w, 0, 30)
	closeWriter(t, w)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("control")) {
		t.Fatalf("a log without operator actions mentions control:\n%s", b)
	}
}
