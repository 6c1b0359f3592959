package audit

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestVerifyExample(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	if err := os.WriteFile(path, readExample(t), 0o600); err != nil {
		t.Fatal(err)
	}
	head := mustHash(t, "edd77880b7dffa2f8397fda2137cfd7b3e7af91baf0d665b890b3865ea1f6dad")
	mid := mustHash(t, "5d927bac13ee2060e20aea3fd70269f7f5176639977921cf431458ab3468b3a8")
	rep := verify(t, path, VerifyOptions{Anchor: &mid, Strict: true})
	requireIntact(t, rep)
	if rep.Records != 5 || rep.Head.Seq != 5 || rep.Head.Chain != head || rep.Anchor.Seq != 3 || rep.Anchor.At.Line != 4 {
		t.Fatalf("report:\n%s", dumpReport(rep))
	}
	if len(rep.Warnings) != 0 || len(rep.Losses) != 0 || len(rep.Torn) != 0 {
		t.Fatalf("warnings on the example: %q", rep.Warnings)
	}
}

// fixture is a log written by the Writer through rotations: PATH.3, PATH.2,
// PATH.1 and PATH, plus its head.
type fixture struct {
	path string
	head Hash
}

func buildFixture(t testing.TB) fixture {
	t.Helper()
	path := logPath(t)
	w := openWriter(t, Options{Path: path, MaxBytes: 4096})
	i := 0
	for ; w.Stats().Rotations < 3; i += 10 {
		writeCycles(t, w, i, 10)
	}
	writeCycles(t, w, i, 5)
	head := w.Stats().Head
	closeWriter(t, w)
	gens, err := ListGenerations(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(gens) != 4 || gens[0].Generation != 3 {
		t.Fatalf("fixture has %d files (%v), want PATH.3 … PATH", len(gens), gens)
	}
	return fixture{path: path, head: head}
}

func (fx fixture) gen(n int) string { return GenerationPath(fx.path, n) }

// seqAt returns the seq of a 1-based line of a file.
func seqAt(t testing.TB, path string, line int) uint64 {
	t.Helper()
	s, ok := leadingSeq(readLines(t, path)[line-1])
	if !ok {
		t.Fatalf("%s:%d has no seq", path, line)
	}
	return s
}

func editLine(t testing.TB, path string, line int, edit func(cols [][]byte) [][]byte) {
	t.Helper()
	lines := readLines(t, path)
	cols := bytes.Split(bytes.TrimSuffix(lines[line-1], []byte("\n")), []byte("\t"))
	cols = edit(cols)
	lines[line-1] = append(bytes.Join(cols, []byte("\t")), '\n')
	writeLines(t, path, lines)
}

// relink recomputes every chain (and the prev_chain shown by resume and
// rotation boots) across the given files, oldest first, as an attacker
// with write access could.
func relink(t testing.TB, files ...string) {
	t.Helper()
	prev := ZeroHash
	for _, f := range files {
		lines := readLines(t, f)
		for i, l := range lines {
			if l[0] == '#' {
				continue
			}
			r, err := ParseLine(bytes.TrimSuffix(l, []byte("\n")))
			if err != nil {
				t.Fatal(err)
			}
			if r.Kind == KindBoot && r.Boot.HasPrevChain {
				r.Boot.PrevChain = prev
			}
			r.Link(prev)
			prev = r.Chain
			lines[i] = r.AppendLine(nil)
		}
		writeLines(t, f, lines)
	}
}

// TestTamperMatrix: each manipulation must fail verification, with the
// first break at the right file, line and seq.
func TestTamperMatrix(t *testing.T) {
	type want struct {
		gen  int // file of the first break
		line int
		seq  func(fx fixture) uint64
		kind BreakKind
		what string // substring of the first break's What
	}
	seqOf := func(gen, line int) func(fixture) uint64 {
		return func(fx fixture) uint64 { return seqAt(t, fx.gen(gen), line) }
	}
	tests := []struct {
		name   string
		tamper func(t *testing.T, fx fixture) // may record expected seqs before editing
		want   want
		breaks int // exact number of breaks, 0: at least one
	}{
		{"one byte changed in a body", func(t *testing.T, fx fixture) {
			editLine(t, fx.gen(1), 10, func(c [][]byte) [][]byte { c[4] = []byte("31337"); return c })
		}, want{1, 10, seqOf(1, 10), BreakTamper, "chain mismatch"}, 1},
		{"chain value changed", func(t *testing.T, fx fixture) {
			editLine(t, fx.gen(1), 10, func(c [][]byte) [][]byte {
				last := c[len(c)-1]
				// Replace the first hex digit with a different hex digit.
				if last[0] == '0' {
					last[0] = '1'
				} else {
					last[0] = '0'
				}
				return c
			})
		}, want{1, 10, seqOf(1, 10), BreakTamper, "chain value altered"}, 1},
		{"line deleted", func(t *testing.T, fx fixture) {
			lines := readLines(t, fx.gen(1))
			writeLines(t, fx.gen(1), append(lines[:9:9], lines[10:]...))
		}, want{1, 10, seqOf(1, 11), BreakTamper, "chain mismatch"}, 1},
		{"line inserted (replayed copy)", func(t *testing.T, fx fixture) {
			lines := readLines(t, fx.gen(1))
			out := append(append(append([][]byte{}, lines[:9]...), lines[8]), lines[9:]...)
			writeLines(t, fx.gen(1), out)
		}, want{1, 10, seqOf(1, 9), BreakReorder, "not increasing"}, 0},
		{"line inserted (forged, validly linked)", func(t *testing.T, fx fixture) {
			lines := readLines(t, fx.gen(1))
			prevRec, _ := ParseLine(bytes.TrimSuffix(lines[8], []byte("\n")))
			forged := Record{Seq: prevRec.Seq + 1, Kind: KindRefused, Refused: RefusedRecord{WallclockMs: 1, AgentPid: 1, Reason: "forged"}}
			forged.Link(prevRec.Chain)
			out := append(append(append([][]byte{}, lines[:9]...), forged.AppendLine(nil)), lines[9:]...)
			writeLines(t, fx.gen(1), out)
		}, want{1, 11, seqOf(1, 10), BreakReorder, "not increasing"}, 0},
		{"two lines swapped", func(t *testing.T, fx fixture) {
			lines := readLines(t, fx.gen(1))
			lines[9], lines[10] = lines[10], lines[9]
			writeLines(t, fx.gen(1), lines)
		}, want{1, 10, seqOf(1, 11), BreakTamper, "chain mismatch"}, 0},
		{"seq rewritten", func(t *testing.T, fx fixture) {
			editLine(t, fx.gen(1), 10, func(c [][]byte) [][]byte { c[0] = []byte("99999"); return c })
		}, want{1, 10, func(fixture) uint64 { return 99999 }, BreakTamper, "chain mismatch"}, 0},
		{"generation deleted from the middle", func(t *testing.T, fx fixture) {
			if err := os.Remove(fx.gen(2)); err != nil {
				t.Fatal(err)
			}
		}, want{1, 2, seqOf(1, 2), BreakGeneration, "missing, substituted or truncated"}, 1},
		{"two generations swapped", func(t *testing.T, fx fixture) {
			a, b := mustRead(t, fx.gen(2)), mustRead(t, fx.gen(3))
			os.WriteFile(fx.gen(2), b, 0o600)
			os.WriteFile(fx.gen(3), a, 0o600)
		}, want{2, 2, seqOf(3, 2), BreakGeneration, "not a rotation boot"}, 0},
		{"two rotated generations swapped", func(t *testing.T, fx fixture) {
			a, b := mustRead(t, fx.gen(1)), mustRead(t, fx.gen(2))
			os.WriteFile(fx.gen(1), b, 0o600)
			os.WriteFile(fx.gen(2), a, 0o600)
		}, want{2, 2, seqOf(1, 2), BreakGeneration, "missing, substituted or truncated"}, 0},
		{"generation truncated", func(t *testing.T, fx fixture) {
			lines := readLines(t, fx.gen(1))
			writeLines(t, fx.gen(1), lines[:len(lines)-3])
		}, want{0, 2, seqOf(0, 2), BreakGeneration, "missing, substituted or truncated"}, 1},
		{"dash chain inside a hashed region", func(t *testing.T, fx fixture) {
			editLine(t, fx.gen(1), 10, func(c [][]byte) [][]byte { c[len(c)-1] = []byte("-"); return c })
		}, want{1, 10, seqOf(1, 10), BreakDowngrade, "downgrade"}, 1},
		{"v2 header replaced by v1", func(t *testing.T, fx fixture) {
			lines := readLines(t, fx.path)
			lines[0] = []byte(HeaderV1 + "\n")
			writeLines(t, fx.path, lines)
		}, want{0, 2, seqOf(0, 2), BreakDowngrade, "v1 or non-v2 region"}, 0},
		{"header removed", func(t *testing.T, fx fixture) {
			lines := readLines(t, fx.path)
			writeLines(t, fx.path, lines[1:])
		}, want{0, 1, seqOf(0, 2), BreakStructure, "does not start with the v2 header"}, 0},
		{"resume boot inserted after deleted records", func(t *testing.T, fx fixture) {
			// Cut the last records of PATH and append a resume boot that
			// links validly to the new last line but shows the old head.
			lines := readLines(t, fx.path)
			lines = lines[:len(lines)-2]
			last, _ := ParseLine(bytes.TrimSuffix(lines[len(lines)-1], []byte("\n")))
			boot := Record{Seq: last.Seq + 3, Kind: KindBoot, Boot: BootRecord{WallclockMs: 5, DaemonPid: 9, PrevChain: fx.head, HasPrevChain: true, Reason: BootResume}}
			boot.Link(last.Chain)
			writeLines(t, fx.path, append(lines, boot.AppendLine(nil)))
		}, want{0, -1, nil, BreakBoot, "records are missing before the restart"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fx := buildFixture(t)
			requireIntact(t, verify(t, fx.path, VerifyOptions{Anchor: &fx.head}))
			var wantSeq uint64
			if tc.want.seq != nil {
				wantSeq = tc.want.seq(fx) // before tampering
			}
			tc.tamper(t, fx)
			rep := verify(t, fx.path, VerifyOptions{})
			if rep.Intact() || len(rep.Breaks) == 0 {
				t.Fatalf("tampering not detected:\n%s", dumpReport(rep))
			}
			if tc.breaks > 0 && len(rep.Breaks) != tc.breaks {
				t.Fatalf("%d breaks, want %d:\n%s", len(rep.Breaks), tc.breaks, dumpReport(rep))
			}
			b := rep.Breaks[0]
			wantLine := tc.want.line
			if wantLine < 0 {
				wantLine = len(readLines(t, fx.path))
				wantSeq = seqAt(t, fx.path, wantLine)
			}
			if b.File != fx.gen(tc.want.gen) || b.Line != wantLine || b.Seq != wantSeq || b.Kind != tc.want.kind || !strings.Contains(b.What, tc.want.what) {
				t.Fatalf("first break %s:%d seq %d %s %q, want %s:%d seq %d %s %q\n%s",
					filepath.Base(b.File), b.Line, b.Seq, b.Kind, b.What,
					filepath.Base(fx.gen(tc.want.gen)), wantLine, wantSeq, tc.want.kind, tc.want.what, dumpReport(rep))
			}
		})
	}
}

// TestRecomputedLogNeedsAnchor: an attacker who edits a record and
// recomputes every chain produces a self-consistent log; only the anchor
// sealed earlier exposes it.
func TestRecomputedLogNeedsAnchor(t *testing.T) {
	fx := buildFixture(t)
	editLine(t, fx.gen(2), 5, func(c [][]byte) [][]byte { c[4] = []byte("1"); return c })
	relink(t, fx.gen(3), fx.gen(2), fx.gen(1), fx.path)
	// Rebuild the oldest file's first link as the attacker would: its
	// rotation boot is trusted as the start of the remaining chain.
	rep := verify(t, fx.path, VerifyOptions{})
	if len(rep.Breaks) != 0 {
		t.Fatalf("a recomputed log should verify without an anchor:\n%s", dumpReport(rep))
	}
	rep = verify(t, fx.path, VerifyOptions{Anchor: &fx.head})
	if rep.Intact() || rep.Anchor.Found {
		t.Fatalf("anchor check passed on a rewritten log:\n%s", dumpReport(rep))
	}
	if !strings.Contains(strings.Join(rep.Failures, ";"), "anchor") {
		t.Fatalf("failures %q do not name the anchor", rep.Failures)
	}
}

// TestNotTamper: losses, torn tails and repaired tails are not tamper.
func TestNotTamper(t *testing.T) {
	tests := []struct {
		name       string
		prepare    func(t *testing.T, path string)
		losses     int
		torn       int
		strictFail bool
	}{
		{"seq gap with an intact chain", func(t *testing.T, path string) {
			writeRecordsRaw(t, path, []uint64{1, 2, 3, 7, 8})
		}, 1, 0, true},
		{"torn last line", func(t *testing.T, path string) {
			writeRecordsRaw(t, path, []uint64{1, 2, 3})
			appendBytes(t, path, []byte("4\t17000000040\t9\trefu"))
		}, 0, 1, true},
		{"corrupt_tail boot after truncation", func(t *testing.T, path string) {
			writeRecordsRaw(t, path, []uint64{1, 2, 3})
			appendBytes(t, path, []byte("4\t17000000040\t9\trefu"))
			w := openWriter(t, Options{Path: path})
			if w.Boot().Reason != BootCorruptTail {
				t.Fatalf("boot %s", w.Boot().Reason)
			}
			writeCycles(t, w, 0, 3)
			closeWriter(t, w)
		}, 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := logPath(t)
			tc.prepare(t, path)
			rep := verify(t, path, VerifyOptions{})
			if !rep.Intact() || len(rep.Breaks) != 0 || len(rep.Losses) != tc.losses || len(rep.Torn) != tc.torn {
				t.Fatalf("report:\n%s", dumpReport(rep))
			}
			if (len(rep.Warnings) > 0) != tc.strictFail {
				t.Fatalf("warnings %q", rep.Warnings)
			}
			if strict := verify(t, path, VerifyOptions{Strict: true}); strict.Intact() == tc.strictFail {
				t.Fatalf("--strict verdict %s:\n%s", strict.Verdict, dumpReport(strict))
			}
		})
	}
}

// writeRecordsRaw writes a v2 file: a fresh boot (seq[0]) and refused
// records with the given seqs, correctly linked.
func writeRecordsRaw(t testing.TB, path string, seqs []uint64) {
	t.Helper()
	buf := []byte(HeaderV2 + "\n")
	prev := ZeroHash
	for i, s := range seqs {
		r := Record{Seq: s, Kind: KindRefused, Refused: RefusedRecord{WallclockMs: 1700000000000 + int64(s), ObserverNs: s, AgentPid: 7, Reason: ReasonDebounced.String()}}
		if i == 0 {
			r = Record{Seq: s, Kind: KindBoot, Boot: BootRecord{WallclockMs: 1700000000000, DaemonPid: 1, Reason: BootFresh}}
		}
		r.Link(prev)
		prev = r.Chain
		buf = r.AppendLine(buf)
	}
	if err := os.WriteFile(path, buf, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyUnchained(t *testing.T) {
	unchained := HeaderV2 + "\n" +
		"1\t1700000000000\t0\tboot\t1\t-\tfresh\t-\n" +
		"2\t1700000000001\t5\trefused\t9\tdebounced\t-\n" +
		"3\t1700000000002\t6\trefused\t9\tdebounced\t-\n"
	mixed := HeaderV2 + "\n" +
		"1\t1700000000000\t0\tboot\t1234\t-\tfresh\tea3737cc98db3db7f5be0f369c21b100c0eae318b0b050d67bb2ac80553435e8\n" +
		"2\t1700000000001\t5\trefused\t9\tdebounced\t-\n"
	tests := []struct {
		name    string
		content string
		allow   bool
		intact  bool
		kind    BreakKind
	}{
		{"unchained refused by default", unchained, false, false, ""},
		{"unchained allowed", unchained, true, true, ""},
		{"mixed is a downgrade even when allowed", mixed, true, false, BreakDowngrade},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := logPath(t)
			os.WriteFile(path, []byte(tc.content), 0o600)
			rep := verify(t, path, VerifyOptions{AllowUnchained: tc.allow})
			if rep.Intact() != tc.intact {
				t.Fatalf("verdict %s:\n%s", rep.Verdict, dumpReport(rep))
			}
			if tc.kind != "" && (len(rep.Breaks) != 1 || rep.Breaks[0].Kind != tc.kind || rep.Breaks[0].Line != 3) {
				t.Fatalf("breaks:\n%s", dumpReport(rep))
			}
			if tc.allow && tc.intact && !strings.Contains(strings.Join(rep.Warnings, ";"), "integrity NOT verified") {
				t.Fatalf("warnings %q must say that integrity was not verified", rep.Warnings)
			}
		})
	}
}

func TestVerifyMalformedLines(t *testing.T) {
	path := logPath(t)
	writeRecordsRaw(t, path, []uint64{1, 2, 3, 4})
	lines := readLines(t, path)
	// Line 3 (seq 2): exit/signal exclusivity cannot apply; make the
	// agent pid non-numeric but keep the chain column intact.
	lines[2] = bytes.Replace(lines[2], []byte("\t7\t"), []byte("\tx7\t"), 1)
	lines = append(lines[:4:4], append([][]byte{[]byte("garbage without tabs\n")}, lines[4:]...)...)
	writeLines(t, path, lines)
	rep := verify(t, path, VerifyOptions{})
	if len(rep.Breaks) != 2 {
		t.Fatalf("want two malformed breaks:\n%s", dumpReport(rep))
	}
	for i, want := range []struct {
		line int
		msg  string
	}{{3, "column 4 (agent_pid)"}, {5, "column(s)"}} {
		if b := rep.Breaks[i]; b.Line != want.line || b.Kind != BreakMalformed || !strings.Contains(b.What, want.msg) {
			t.Fatalf("break %d: %+v, want line %d %q", i, b, want.line, want.msg)
		}
	}
}

func TestVerifyMissingLog(t *testing.T) {
	if _, err := Verify(filepath.Join(t.TempDir(), "none.log"), VerifyOptions{}); !os.IsNotExist(unwrapAll(err)) {
		t.Fatalf("Verify of a missing log = %v, want not-exist", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err
		}
		err = u.Unwrap()
	}
}

func TestVerifyProgressAndOnRecord(t *testing.T) {
	fx := buildFixture(t)
	var total int64
	var seqs []uint64
	rep := verify(t, fx.path, VerifyOptions{
		Progress: func(n int64) { total += n },
		OnRecord: func(pos Position, r *Record) { seqs = append(seqs, r.Seq) },
	})
	requireIntact(t, rep)
	if total != rep.Bytes {
		t.Fatalf("progress reported %d bytes, read %d", total, rep.Bytes)
	}
	if uint64(len(seqs)) != rep.Records {
		t.Fatalf("OnRecord saw %d records, report %d", len(seqs), rep.Records)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Fatalf("records out of order: %v", seqs)
		}
	}
	_ = fmt.Sprint(time.Now())
}
