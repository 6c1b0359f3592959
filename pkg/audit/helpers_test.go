package audit

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a deterministic wall clock: every call advances it by step.
type fakeClock struct {
	ns   atomic.Int64
	step time.Duration
}

func newFakeClock(step time.Duration) *fakeClock {
	c := &fakeClock{step: step}
	c.ns.Store(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time { return time.Unix(0, c.ns.Add(int64(c.step))) }

func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func logPath(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "audit.log")
}

func openWriter(t testing.TB, o Options) *Writer {
	t.Helper()
	if o.Now == nil {
		o.Now = newFakeClock(time.Millisecond).Now
	}
	if o.DaemonPid == 0 {
		o.DaemonPid = 4242
	}
	w, err := Open(o)
	if err != nil {
		t.Fatalf("Open(%s): %v", o.Path, err)
	}
	return w
}

// cycle enqueues the records of one recovery: a spawn and its complete, or
// a refusal. i selects which.
func cycle(t testing.TB, w *Writer, i int) {
	t.Helper()
	pid := uint32(100 + i%7)
	var ok bool
	switch i % 3 {
	case 0:
		ok = w.Spawn(SpawnRecord{ObserverNs: uint64(i) * 1e6, AgentPid: pid, ChildPid: uint32(9000 + i), Program: "/usr/bin/restart\tagent", Source: SourceInline, TemplateLen: 24})
	case 1:
		ok = w.Complete(CompleteRecord{ObserverNs: uint64(i) * 1e6, AgentPid: pid, ChildPid: uint32(9000 + i), Outcome: OutcomeReaped, ExitCode: i % 2, DurationNs: uint64(i) * 1000, StdoutLen: 3})
	default:
		ok = w.Refused(RefusedRecord{ObserverNs: uint64(i) * 1e6, AgentPid: pid, Reason: ReasonDebounced.String()})
	}
	if !ok {
		t.Fatalf("enqueue %d refused: %+v", i, w.Stats())
	}
}

func writeCycles(t testing.TB, w *Writer, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		cycle(t, w, i)
		if i%10 == 9 {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

func closeWriter(t testing.TB, w *Writer) {
	t.Helper()
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func verify(t testing.TB, path string, o VerifyOptions) *Report {
	t.Helper()
	rep, err := Verify(path, o)
	if err != nil {
		t.Fatalf("Verify(%s): %v", path, err)
	}
	return rep
}

func requireIntact(t testing.TB, rep *Report) {
	t.Helper()
	if !rep.Intact() || len(rep.Breaks) > 0 {
		t.Fatalf("want intact, got %s:\n%s", rep.Verdict, dumpReport(rep))
	}
}

func dumpReport(rep *Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "records=%d chained=%d unchained=%d legacy=%d\n", rep.Records, rep.Chained, rep.Unchained, rep.LegacyLines)
	for _, f := range rep.Files {
		fmt.Fprintf(&b, "file %s lines=%d records=%d seq %d..%d\n", f.Path, f.Lines, f.Records, f.FirstSeq, f.LastSeq)
	}
	for _, x := range rep.Breaks {
		fmt.Fprintf(&b, "break %s:%d seq %d %s: %s\n", filepath.Base(x.File), x.Line, x.Seq, x.Kind, x.What)
	}
	for _, x := range rep.Losses {
		fmt.Fprintf(&b, "loss %s:%d after %d next %d\n", filepath.Base(x.File), x.Line, x.After, x.Next)
	}
	for _, x := range rep.Torn {
		fmt.Fprintf(&b, "torn %s:%d %d bytes\n", filepath.Base(x.File), x.Line, x.Bytes)
	}
	fmt.Fprintf(&b, "failures: %q\nwarnings: %q\n", rep.Failures, rep.Warnings)
	return b.String()
}

func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	return lines
}

func writeLines(t testing.TB, path string, lines [][]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

func appendBytes(t testing.TB, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func sscanf(s, format string, args ...any) (int, error) { return fmt.Sscanf(s, format, args...) }
