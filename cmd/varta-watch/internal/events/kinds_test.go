package events

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/varta-go/varta/pkg/vlp"
)

func TestParseKinds(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: "", want: "beat,stall,decode,io,ctrunc,mismatch,eviction,gave_up"},
		{in: "stall", want: "stall"},
		{in: "stall, eviction,mismatch", want: "stall,mismatch,eviction"},
		{in: "-beat", want: "stall,decode,io,ctrunc,mismatch,eviction,gave_up"},
		{in: "-beat,-decode", want: "stall,io,ctrunc,mismatch,eviction,gave_up"},
		{in: "stalls", err: `unknown kind "stalls"`},
		{in: "stall,-beat", err: "not both"},
		{in: "-beat,-stall,-decode,-io,-ctrunc,-mismatch,-eviction,-gave_up", err: "leaves no kind"},
	}
	for _, tc := range tests {
		got, err := ParseKinds(tc.in)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "--export-kinds") {
				t.Errorf("ParseKinds(%q) error %v, want one containing %q", tc.in, err, tc.err)
			}
		case err != nil:
			t.Errorf("ParseKinds(%q): %v", tc.in, err)
		case got.String() != tc.want:
			t.Errorf("ParseKinds(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestKindsFilterFile: with --export-kinds -beat the file gets every event
// but the beats, in the unchanged file format.
func TestKindsFilterFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events")
	kinds, err := ParseKinds("-beat")
	if err != nil {
		t.Fatal(err)
	}
	w := openT(t, Options{Path: path, Kinds: kinds}, nil)
	w.Emit(beat(1))
	w.Emit(Event{Kind: KindStall, Ns: 5, Pid: 100, Nonce: 1})
	w.Emit(beat(2))
	w.Emit(Event{Kind: KindEviction, Ns: 9, Pid: 100})
	closeT(t, w)
	if got, want := readFile(t, path), "5\tstall\t100\t1\tstall\t-\n9\teviction\t100\t-\t-\t-\n"; got != want {
		t.Fatalf("file:\n%q\nwant\n%q", got, want)
	}
}

// TestTerminalRendering compares the human rendering of every kind with
// testdata/terminal.golden (go test -update rewrites it).
func TestTerminalRendering(t *testing.T) {
	base := time.Date(2026, 5, 1, 20, 15, 3, 120e6, time.UTC)
	evs := []Event{
		{Kind: KindBeat, Ns: 0, Pid: 4242, Nonce: 7, Status: vlp.StatusOk, Payload: 0},
		{Kind: KindBeat, Ns: 1e9, Pid: 4242, Nonce: 8, Status: vlp.StatusDegraded, Payload: 4294967295},
		{Kind: KindBeat, Ns: 2e9, Pid: 4242, Nonce: vlp.NonceTerminal, Status: vlp.StatusCritical},
		{Kind: KindStall, Ns: 3.5e9, Pid: 4242, Nonce: 8},
		{Kind: KindDecode, Ns: 4e9, Text: "BadCrc { expected: 1, actual: 2 }"},
		{Kind: KindIO, Ns: 5e9, Text: "recvmsg: bad\tthing\n"},
		{Kind: KindCtrunc, Ns: 5e9, Text: "control message truncated"},
		{Kind: KindMismatch, Ns: 6e9, Pid: 31337, Text: MismatchAuthFailure},
		{Kind: KindEviction, Ns: 7e9, Pid: 1048576},
		{Kind: KindGaveUp, Ns: 8e9, Pid: 4242, Text: "web"},
	}
	var got []byte
	for _, ev := range evs {
		got = appendHumanLine(got, &ev, base.Add(time.Duration(ev.Ns)))
	}
	checkGolden(t, got, "terminal.golden")
	// Columns are aligned: the pid column starts at the same offset on
	// every line.
	for _, l := range strings.Split(strings.TrimSpace(string(got)), "\n") {
		if l[24] == ' ' || l[23] != ' ' {
			t.Errorf("pid column not at offset 24: %q", l)
		}
	}
}

func TestTerminalOnlyForStdout(t *testing.T) {
	_, err := Open(Options{Path: filepath.Join(t.TempDir(), "e"), Terminal: true}, nil)
	if err == nil || !strings.Contains(err.Error(), "standard output only") {
		t.Fatalf("Open with Terminal on a file: %v", err)
	}
}
