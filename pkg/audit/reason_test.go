package audit

import (
	"bufio"
	"os"
	"regexp"
	"testing"
)

// labelValue is what the reason table may put in a metric label or a
// reason column: lower-case words joined by underscores.
var labelValue = regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)

// TestReasonTable walks the reason table: every reason has an audit code
// and an outcome label, codes are unique, and each reason's column text
// survives the audit codec (AppendLine, ParseLine, ParseReason) and the
// real Writer and verifier.
func TestReasonTable(t *testing.T) {
	codes := map[string]Reason{}
	path := logPath(t)
	w := openWriter(t, Options{Path: path})
	var want []string
	for r := ReasonNone + 1; r < NumReasons; r++ {
		info := r.Info()
		if !labelValue.MatchString(info.Code) {
			t.Errorf("reason %d: audit code %q is not a lower-case token", r, info.Code)
		}
		if !labelValue.MatchString(info.Outcome) {
			t.Errorf("reason %s: outcome label %q is not a lower-case token", info.Code, info.Outcome)
		}
		if info.Why == "" {
			t.Errorf("reason %s: no explanation for the log", info.Code)
		}
		if prev, dup := codes[info.Code]; dup {
			t.Errorf("reasons %d and %d share the code %q", prev, r, info.Code)
		}
		codes[info.Code] = r
		if r.String() != info.Code {
			t.Errorf("reason %d: String() = %q, want %q", r, r.String(), info.Code)
		}

		svc := ""
		if info.PerService {
			svc = "billing.service"
		}
		col := r.Column(svc)
		rec := Record{Seq: 7, Kind: KindRefused, Refused: RefusedRecord{WallclockMs: 1, ObserverNs: 2, AgentPid: 3, Reason: col}}
		rec.Link(Hash{})
		line := rec.AppendLine(nil)
		got, err := ParseLine(line[:len(line)-1])
		if err != nil {
			t.Fatalf("reason %s: %q does not parse: %v", info.Code, line, err)
		}
		if got != rec {
			t.Errorf("reason %s: round trip\n got %+v\nwant %+v", info.Code, got, rec)
		}
		pr, psvc, ok := ParseReason(got.Refused.Reason)
		if !ok || pr != r || psvc != svc {
			t.Errorf("ParseReason(%q) = %d, %q, %v; want %d, %q", got.Refused.Reason, pr, psvc, ok, r, svc)
		}
		if !w.Refused(RefusedRecord{AgentPid: 3, Reason: col}) {
			t.Fatalf("reason %s: enqueue refused", info.Code)
		}
		want = append(want, col)
	}
	if len(codes) == 0 {
		t.Fatal("empty reason table")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(path, VerifyOptions{})
	if err != nil || !rep.Intact() {
		t.Fatalf("verify: %v %+v", err, rep)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rec, err := ParseLine(sc.Bytes()); err == nil && rec.Kind == KindRefused {
			got = append(got, rec.Refused.Reason)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("file has %d refused records, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d: reason %q, want %q", i, got[i], want[i])
		}
	}
}

func TestParseReasonRejects(t *testing.T) {
	for _, col := range []string{"", "future_reason", "backoff", "debounced:web", "gave_up_web", ":web"} {
		if r, _, ok := ParseReason(col); ok {
			t.Errorf("ParseReason(%q) = %s, want not ok", col, r)
		}
	}
	for _, r := range []Reason{ReasonNone, NumReasons, 255} {
		if r.Valid() || r.String() != "" || r.Column("x") != "" {
			t.Errorf("invalid reason %d: valid %v, %q, %q", r, r.Valid(), r.String(), r.Column("x"))
		}
	}
}
