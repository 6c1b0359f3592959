package app

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/varta-go/varta/pkg/audit"
)

var updateFixtures = flag.Bool("update-fixtures", false, "regenerate testdata/<fixture>/ audit logs")

// fixtureClock is the wall clock of the generated logs' boot records.
type fixtureClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fixtureClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fixtureClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

var fixtureBase = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// writeRotatedFixture writes a log through two daemon runs with rotation
// (PATH.2, PATH.1, PATH) into dir.
func writeRotatedFixture(t *testing.T, dir string) {
	t.Helper()
	path := filepath.Join(dir, "audit.log")
	clock := &fixtureClock{t: fixtureBase}
	at := fixtureBase
	step := func(d time.Duration) int64 { at = at.Add(d); clock.Set(at); return at.UnixMilli() }
	run := func(daemon uint32, cycles int, first int) {
		w, err := audit.Open(audit.Options{Path: path, MaxBytes: 4096, DaemonPid: daemon, Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		obs := uint64(first) * 1e9
		add := func(ok bool) {
			if !ok {
				t.Fatal("enqueue refused")
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		for i := first; i < first+cycles; i++ {
			pid := []uint32{7, 12, 31, 4242}[i%4]
			obs += 2e9
			child := uint32(20000 + i)
			switch i % 6 {
			case 0, 3:
				add(w.Spawn(audit.SpawnRecord{WallclockMs: step(1500 * time.Millisecond), ObserverNs: obs, AgentPid: pid, ChildPid: child,
					Program: "/usr/local/bin/restart-agent", Source: audit.SourceInline, TemplateLen: 31}))
				c := audit.CompleteRecord{WallclockMs: step(time.Duration(800+i*37) * time.Millisecond), ObserverNs: obs + 1e9,
					AgentPid: pid, ChildPid: child, Outcome: audit.OutcomeReaped, ExitCode: 0, DurationNs: uint64(800+i*37) * 1e6, StdoutLen: 12}
				switch {
				case i%5 == 0:
					c.ExitCode = 3
					c.StderrLen = 40
				case pid == 31:
					c.Outcome, c.ExitCode, c.Signal, c.Truncated, c.StdoutLen = audit.OutcomeKilled, audit.NoExitCode, 9, true, 4096
				}
				add(w.Complete(c))
			case 1:
				add(w.Refused(audit.RefusedRecord{WallclockMs: step(200 * time.Millisecond), ObserverNs: obs, AgentPid: pid, Reason: audit.ReasonDebounced.String()}))
			case 2:
				add(w.Refused(audit.RefusedRecord{WallclockMs: step(300 * time.Millisecond), ObserverNs: obs, AgentPid: pid, Reason: audit.ReasonUnauthenticatedTransport.String()}))
			case 4:
				add(w.Spawn(audit.SpawnRecord{WallclockMs: step(time.Second), ObserverNs: obs, AgentPid: pid, ChildPid: child,
					Program: "/usr/bin/systemctl", Source: "/etc/varta/recovery.cmd", TemplateLen: 27}))
				add(w.Complete(audit.CompleteRecord{WallclockMs: step(5 * time.Second), ObserverNs: obs + 5e9, AgentPid: pid, ChildPid: child,
					Outcome: audit.OutcomeReapFailed, ExitCode: audit.NoExitCode, DurationNs: 5e9}))
			case 5:
				add(w.Refused(audit.RefusedRecord{WallclockMs: step(100 * time.Millisecond), ObserverNs: obs, AgentPid: pid, Reason: audit.ReasonOutstandingInFlight.String()}))
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		step(10 * time.Minute)
	}
	step(0)
	run(1001, 30, 0)
	run(1002, 20, 30)
}

// writeWarningsFixture: a seq gap with an intact chain and a torn tail.
func writeWarningsFixture(t *testing.T, dir string) {
	t.Helper()
	buf := []byte(audit.HeaderV2 + "\n")
	prev := audit.ZeroHash
	ms := fixtureBase.UnixMilli()
	for _, seq := range []uint64{1, 2, 3, 4, 9, 10} {
		r := audit.Record{Seq: seq, Kind: audit.KindRefused, Refused: audit.RefusedRecord{WallclockMs: ms + int64(seq)*1000, ObserverNs: seq * 1e9, AgentPid: 55, Reason: audit.ReasonSocketModeOnly.String()}}
		if seq == 1 {
			r = audit.Record{Seq: 1, Kind: audit.KindBoot, Boot: audit.BootRecord{WallclockMs: ms, DaemonPid: 900, Reason: audit.BootFresh}}
		}
		r.Link(prev)
		prev = r.Chain
		buf = r.AppendLine(buf)
	}
	buf = append(buf, "11\t1714564811000\t11000000000\trefu"...)
	if err := os.WriteFile(filepath.Join(dir, "audit.log"), buf, 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeUnchainedFixture: a log written without chain support.
func writeUnchainedFixture(t *testing.T, dir string) {
	t.Helper()
	ms := fixtureBase.UnixMilli()
	recs := []audit.Record{
		{Seq: 1, Kind: audit.KindBoot, Boot: audit.BootRecord{WallclockMs: ms, DaemonPid: 77, Reason: audit.BootFresh}},
		{Seq: 2, Kind: audit.KindSpawn, Spawn: audit.SpawnRecord{WallclockMs: ms + 1000, ObserverNs: 5e9, AgentPid: 8, ChildPid: 300, Program: "/bin/true", Source: audit.SourceInline, TemplateLen: 9}},
		{Seq: 3, Kind: audit.KindComplete, Complete: audit.CompleteRecord{WallclockMs: ms + 1010, ObserverNs: 5e9 + 1e7, AgentPid: 8, ChildPid: 300, Outcome: audit.OutcomeReaped, ExitCode: 0, DurationNs: 1e7}},
	}
	buf := []byte(audit.HeaderV2 + "\n")
	for i := range recs {
		recs[i].Unchained = true
		buf = recs[i].AppendLine(buf)
	}
	if err := os.WriteFile(filepath.Join(dir, "audit.log"), buf, 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeTamperedFixture copies the rotated fixture and tampers with it: a
// body byte in PATH.1, a chain value in PATH, a deleted line in PATH.2.
func writeTamperedFixture(t *testing.T, dir string) {
	t.Helper()
	src := t.TempDir()
	writeRotatedFixture(t, src)
	edit := func(name string, fn func(lines [][]byte) [][]byte) {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		lines := bytes.SplitAfter(b, []byte("\n"))
		lines = fn(lines)
		if err := os.WriteFile(filepath.Join(dir, name), bytes.Join(lines, nil), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	edit("audit.log.2", func(l [][]byte) [][]byte { return append(l[:6:6], l[7:]...) })
	edit("audit.log.1", func(l [][]byte) [][]byte {
		for i := 9; i < len(l); i++ { // the first spawn from line 10 on
			if bytes.Contains(l[i], []byte("restart-agent")) {
				l[i] = bytes.Replace(l[i], []byte("restart-agent"), []byte("restart-agenT"), 1)
				break
			}
		}
		return l
	})
	edit("audit.log", func(l [][]byte) [][]byte {
		c := l[15] // line 16: change the last hex digit of its chain
		if c[len(c)-2] == '0' {
			c[len(c)-2] = '1'
		} else {
			c[len(c)-2] = '0'
		}
		return l
	})
}

// writeControlFixture: recovery records interleaved with operator actions
// (control records): a snooze with an end, a forever snooze, a resume and
// a reload.
func writeControlFixture(t *testing.T, dir string) {
	t.Helper()
	path := filepath.Join(dir, "audit.log")
	clock := &fixtureClock{t: fixtureBase}
	at := fixtureBase
	step := func(d time.Duration) int64 { at = at.Add(d); clock.Set(at); return at.UnixMilli() }
	w, err := audit.Open(audit.Options{Path: path, DaemonPid: 3003, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	add := func(ok bool) {
		if !ok {
			t.Fatal("enqueue refused")
		}
	}
	add(w.Control(audit.ControlRecord{WallclockMs: step(time.Second), ObserverNs: 1e9, UID: 0, Action: audit.ControlSnooze,
		Target: "web", UntilMs: at.Add(30 * time.Minute).UnixMilli(), Reason: "deploy 4711"}))
	add(w.Refused(audit.RefusedRecord{WallclockMs: step(5 * time.Second), ObserverNs: 6e9, AgentPid: 41, Reason: "snoozed"}))
	add(w.Control(audit.ControlRecord{WallclockMs: step(time.Second), ObserverNs: 7e9, UID: 1001, Action: audit.ControlSnooze,
		Target: "pid:77", Forever: true, Reason: "disk\tbroken"}))
	add(w.Control(audit.ControlRecord{WallclockMs: step(time.Minute), ObserverNs: 67e9, UID: 0, Action: audit.ControlResume, Target: "web"}))
	add(w.Spawn(audit.SpawnRecord{WallclockMs: step(time.Second), ObserverNs: 68e9, AgentPid: 41, ChildPid: 500,
		Program: "/usr/local/bin/restart-agent", Source: audit.SourceInline, TemplateLen: 31}))
	add(w.Complete(audit.CompleteRecord{WallclockMs: step(time.Second), ObserverNs: 69e9, AgentPid: 41, ChildPid: 500,
		Outcome: audit.OutcomeReaped, ExitCode: 0, DurationNs: 1e9}))
	add(w.Control(audit.ControlRecord{WallclockMs: step(time.Second), ObserverNs: 70e9, UID: 0, Action: audit.ControlReload, Reason: "ok"}))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

var fixtures = map[string]func(*testing.T, string){
	"control":   writeControlFixture,
	"rotated":   writeRotatedFixture,
	"warnings":  writeWarningsFixture,
	"unchained": writeUnchainedFixture,
	"tampered":  writeTamperedFixture,
}

// TestFixturesReproducible regenerates every fixture and compares it with
// the committed copy (the Writer's output is deterministic for a given
// clock); -update-fixtures rewrites testdata/.
func TestFixturesReproducible(t *testing.T) {
	for name, gen := range fixtures {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			gen(t, dir)
			out := filepath.Join("testdata", name)
			if *updateFixtures {
				os.RemoveAll(out)
				if err := os.MkdirAll(out, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), audit.SeqNoteSuffix) {
					continue // the writer's seq note is not part of the log
				}
				got, err := os.ReadFile(filepath.Join(dir, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				if *updateFixtures {
					if err := os.WriteFile(filepath.Join(out, e.Name()), got, 0o600); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(filepath.Join(out, e.Name()))
				if err != nil {
					t.Fatalf("%v (run go test -run TestFixturesReproducible -update-fixtures)", err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%s/%s differs from a fresh generation", out, e.Name())
				}
			}
		})
	}
}
