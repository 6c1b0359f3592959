package audit

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestOpenBootReasons prepares a file in every state Open can meet and
// checks the boot reason, the seq and chain it continues, the repair, and
// that the result verifies.
func TestOpenBootReasons(t *testing.T) {
	example := readExample(t)
	exampleHead := mustHash(t, "edd77880b7dffa2f8397fda2137cfd7b3e7af91baf0d665b890b3865ea1f6dad")
	unchained := []byte(HeaderV2 + "\n1\t1700000000000\t0\tboot\t1\t-\tfresh\t-\n2\t1700000000001\t5\trefused\t9\tdebounced\t-\n")
	tests := []struct {
		name        string
		content     []byte // nil: no file
		reason      BootReason
		seq         uint64
		prev        *Hash // the boot's link; nil: genesis
		showPrev    bool
		truncated   int64
		verifyOpts  VerifyOptions
		wantLegacy  uint64
		wantPrefix  []byte // the old bytes that must be kept
		wantBreaks  int
		wantRecords uint64
	}{
		{name: "new file", reason: BootFresh, seq: 1, wantRecords: 1},
		{name: "empty file", content: []byte{}, reason: BootFresh, seq: 1, wantRecords: 1},
		{name: "torn header", content: []byte(HeaderV2[:10]), reason: BootFresh, seq: 1, truncated: 10, wantRecords: 1},
		{name: "header only", content: []byte(HeaderV2 + "\n"), reason: BootFresh, seq: 1, wantRecords: 1},
		{name: "intact file", content: example, reason: BootResume, seq: 6, prev: &exampleHead, showPrev: true, wantPrefix: example, wantRecords: 6},
		{name: "torn last line", content: append(append([]byte{}, example...), "6\t17000002000"...),
			reason: BootCorruptTail, seq: 6, prev: &exampleHead, truncated: 13, wantPrefix: example, wantRecords: 6},
		{name: "unparseable last line", content: append(append([]byte{}, example...), "6\tgarbage\n"...),
			reason: BootSchemaDrift, seq: 7, wantPrefix: example, wantBreaks: 1, wantRecords: 6},
		{name: "no header", content: []byte("some old log line\nanother\n"), reason: BootSchemaDrift, seq: 1,
			wantLegacy: 2, wantPrefix: []byte("some old log line\nanother\n"), wantRecords: 1},
		{name: "no header, no final LF", content: []byte("junk"), reason: BootSchemaDrift, seq: 1,
			wantLegacy: 1, wantPrefix: []byte("junk\n"), wantRecords: 1},
		{name: "legacy v1", content: []byte(HeaderV1 + "\n1700000000000\tspawn\t7\n"), reason: BootLegacyV1, seq: 1,
			wantLegacy: 1, wantPrefix: []byte(HeaderV1 + "\n1700000000000\tspawn\t7\n"), wantRecords: 1},
		{name: "unchained log", content: unchained, reason: BootSchemaDrift, seq: 3,
			verifyOpts: VerifyOptions{AllowUnchained: true}, wantPrefix: unchained, wantRecords: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := logPath(t)
			if tc.content != nil {
				if err := os.WriteFile(path, tc.content, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			w := openWriter(t, Options{Path: path})
			b := w.Boot()
			closeWriter(t, w)
			if b.Reason != tc.reason || b.Seq != tc.seq || b.TruncatedBytes != tc.truncated {
				t.Fatalf("boot %+v, want reason %s seq %d truncated %d", b, tc.reason, tc.seq, tc.truncated)
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(raw, tc.wantPrefix) {
				t.Fatalf("old bytes not kept:\n%s", raw)
			}
			lines := readLines(t, path)
			last := bytes.TrimSuffix(lines[len(lines)-1], []byte("\n"))
			r, err := ParseLine(last)
			if err != nil {
				t.Fatalf("boot line %q: %v", last, err)
			}
			prev := ZeroHash
			if tc.prev != nil {
				prev = *tc.prev
			}
			if r.Boot.HasPrevChain != tc.showPrev || (tc.showPrev && r.Boot.PrevChain != prev) {
				t.Fatalf("boot prev_chain column: %q", last)
			}
			if r.Chain != ChainHash(prev, KindBoot, last[:len(last)-65]) {
				t.Fatalf("boot does not link to %s", prev)
			}
			rep := verify(t, path, tc.verifyOpts)
			if len(rep.Breaks) != tc.wantBreaks || rep.LegacyLines != tc.wantLegacy || rep.Records != tc.wantRecords {
				t.Fatalf("verify:\n%s", dumpReport(rep))
			}
			if tc.wantBreaks == 0 && !rep.Intact() {
				t.Fatalf("not intact:\n%s", dumpReport(rep))
			}
		})
	}
}

// TestOpenAfterMigrationResumes: a migrated file (old bytes, then a v2
// region) resumes its v2 region instead of migrating again.
func TestOpenAfterMigrationResumes(t *testing.T) {
	path := logPath(t)
	if err := os.WriteFile(path, []byte(HeaderV1+"\nold v1 line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w := openWriter(t, Options{Path: path})
	writeCycles(t, w, 0, 5)
	closeWriter(t, w)
	w = openWriter(t, Options{Path: path})
	if b := w.Boot(); b.Reason != BootResume || b.Seq != 7 {
		t.Fatalf("boot %+v, want resume at seq 7", b)
	}
	closeWriter(t, w)
	if n := strings.Count(string(mustRead(t, path)), HeaderV2); n != 1 {
		t.Fatalf("%d v2 headers, want 1", n)
	}
	rep := verify(t, path, VerifyOptions{})
	requireIntact(t, rep)
	if rep.LegacyLines != 1 {
		t.Fatalf("legacy lines %d", rep.LegacyLines)
	}
}

// TestOpenAfterCrashMidRotation: PATH was moved to PATH.1 but the new PATH
// never got its rotation boot. Open continues PATH.1's chain.
func TestOpenAfterCrashMidRotation(t *testing.T) {
	for _, leftover := range []string{"missing", "empty", "header only"} {
		t.Run(leftover, func(t *testing.T) {
			path := logPath(t)
			w := openWriter(t, Options{Path: path})
			writeCycles(t, w, 0, 10)
			head := w.Stats().Head
			closeWriter(t, w)
			if err := os.Rename(path, GenerationPath(path, 1)); err != nil {
				t.Fatal(err)
			}
			switch leftover {
			case "empty":
				os.WriteFile(path, nil, 0o600)
			case "header only":
				os.WriteFile(path, []byte(HeaderV2+"\n"), 0o600)
			}
			w = openWriter(t, Options{Path: path})
			b := w.Boot()
			closeWriter(t, w)
			if b.Reason != BootRotation || b.Seq != 12 {
				t.Fatalf("boot %+v, want rotation at seq 12", b)
			}
			r, err := lastRecordOf(path)
			if err != nil || !r.Boot.HasPrevChain || r.Boot.PrevChain != head {
				t.Fatalf("rotation boot %+v %v does not show PATH.1's head", r, err)
			}
			requireIntact(t, verify(t, path, VerifyOptions{}))
		})
	}
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustHash(t testing.TB, s string) Hash {
	t.Helper()
	h, err := ParseHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
