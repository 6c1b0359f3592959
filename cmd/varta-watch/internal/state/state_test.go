package state_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/state"
	"github.com/varta-go/varta/pkg/secretfile"
	"github.com/varta-go/varta/pkg/vlp"
	"github.com/varta-go/varta/pkg/vlp/secure"
)

const boot = "0f4c2d1e-8a3b-4c5d-9e6f-0123456789ab"

func sampleAgents() *state.Agents {
	return &state.Agents{Saved: 1_700_000_000_123_456_789, BootID: boot, Agents: []state.Agent{
		{Pid: 4242, Origin: vlp.OriginKernelAttested, StartTime: 987654, NSInode: 4026531836,
			LastBeat: 1_700_000_000_000_000_000, Nonce: 17, HasNonce: true, Stalled: true,
			Stalls: 2, Beats: 17, Recovered: 1_699_999_999_000_000_000, HasRecovered: true},
		{Pid: 7, Origin: vlp.OriginNetworkUnverified, LastBeat: -5, TerminalTs: 99, HasTerminal: true, Beats: 1},
		{Pid: 4294967295, Origin: vlp.OriginOperatorAttestedTransport, LastBeat: 0, Nonce: 18446744073709551615, HasNonce: true, CrossNS: true},
	}}
}

func sampleMarks() []secure.SenderMark {
	return []secure.SenderMark{
		{Pid: 10, LastSeen: time.Unix(0, 1_700_000_000_000_000_001),
			Cur:      secure.PrefixMark{Random: [8]byte{1, 2, 3, 4, 5, 6, 7, 0xff}, HW: 4294967295, Set: true},
			Prev:     secure.PrefixMark{Random: [8]byte{9, 9, 9, 9, 9, 9, 9, 9}, HW: 0, Set: true},
			MaxNonce: 3, HasNonce: true, MaxTerm: 8, HasTerm: true},
		{Pid: 11, LastSeen: time.Unix(0, 5), Cur: secure.PrefixMark{HW: 7, Set: true}, MaxTerm: 1, HasTerm: true},
	}
}

func TestAgentsRoundTrip(t *testing.T) {
	for _, a := range []*state.Agents{sampleAgents(), {Saved: 1}} {
		data := state.EncodeAgents(a)
		got, err := state.ParseAgents(data, 10)
		if err != nil {
			t.Fatalf("ParseAgents(%q): %v", data, err)
		}
		if got.Saved != a.Saved || got.BootID != a.BootID || len(got.Agents) != len(a.Agents) {
			t.Fatalf("round trip: got %+v, want %+v", got, a)
		}
		for i := range a.Agents {
			if got.Agents[i] != a.Agents[i] {
				t.Errorf("agent %d: got %+v, want %+v", i, got.Agents[i], a.Agents[i])
			}
		}
		if again := state.EncodeAgents(got); !bytes.Equal(again, data) {
			t.Errorf("re-encoding differs:\n%s\n%s", again, data)
		}
	}
}

func TestReplayRoundTrip(t *testing.T) {
	marks := sampleMarks()
	data := state.EncodeReplay(42, marks)
	got, err := state.ParseReplay(data, 10)
	if err != nil {
		t.Fatalf("ParseReplay(%q): %v", data, err)
	}
	if got.Saved != 42 || len(got.Marks) != len(marks) {
		t.Fatalf("got %+v", got)
	}
	for i := range marks {
		g, w := got.Marks[i], marks[i]
		if !g.LastSeen.Equal(w.LastSeen) {
			t.Errorf("mark %d: last seen %v, want %v", i, g.LastSeen, w.LastSeen)
		}
		g.LastSeen, w.LastSeen = time.Time{}, time.Time{}
		if g != w {
			t.Errorf("mark %d: got %+v, want %+v", i, g, w)
		}
	}
}

// reseal recomputes the end line of a hand-edited file, so that a test
// reaches the rule it is about instead of the checksum.
func reseal(t *testing.T, body string) []byte {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	n := 0
	for _, l := range lines {
		if !strings.HasPrefix(l, "varta-watch-state ") && !strings.HasPrefix(l, "saved ") && !strings.HasPrefix(l, "boot ") {
			n++
		}
	}
	return state.Reseal([]byte(strings.Join(lines, "\n")+"\n"), n)
}

func TestParseAgentsRefuses(t *testing.T) {
	good := string(state.EncodeAgents(sampleAgents()))
	body := good[:strings.LastIndex(strings.TrimSuffix(good, "\n"), "\n")+1]
	agentLine := "agent 4242 3 987654 4026531836 1700000000000000000 17 - 1 0 2 17 -\n"
	hdr := "varta-watch-state agents v1\nsaved 1\nboot " + boot + "\n"
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "state file: empty"},
		{"torn: no final newline", []byte(good[:len(good)-1]), "does not end with a newline"},
		{"torn: end line missing", []byte(body), "last line must be \"end <records> <crc32c>\""},
		{"bit flip", []byte(strings.Replace(good, "4242", "4243", 1)), "checksum"},
		{"wrong kind", reseal(t, strings.Replace(body, "agents v1", "replay v1", 1)), "header must be \"varta-watch-state agents v1\""},
		{"future version", reseal(t, strings.Replace(body, "agents v1", "agents v2", 1)), "line 1: header must be"},
		{"no boot line", reseal(t, "varta-watch-state agents v1\nsaved 1\n"), "missing \"boot <id>\""},
		{"bad boot id", reseal(t, "varta-watch-state agents v1\nsaved 1\nboot ../../etc\n"), "boot id"},
		{"unknown header", reseal(t, "varta-watch-state agents v1\nsaved 1\nboot -\nowner root\n"), "line 4: unknown line \"owner\""},
		{"duplicate header", reseal(t, "varta-watch-state agents v1\nsaved 1\nboot -\nboot -\n"), "line 4: \"boot\" given twice"},
		{"saved not a number", reseal(t, "varta-watch-state agents v1\nsaved 0x10\nboot -\n"), "line 2: saved"},
		{"pid 0", reseal(t, hdr+"agent 0 0 - - 1 1 - 0 0 0 0 -\n"), "line 4: pid"},
		{"pid too large", reseal(t, hdr+"agent 4294967296 0 - - 1 1 - 0 0 0 0 -\n"), "pid"},
		{"origin 4", reseal(t, hdr+"agent 5 4 - - 1 1 - 0 0 0 0 -\n"), "origin \"4\""},
		{"kernel-attested without identity", reseal(t, hdr+"agent 5 3 - - 1 1 - 0 0 0 0 -\n"), "needs its start time"},
		{"too few fields", reseal(t, hdr+"agent 5 0 - - 1 1 - 0 0 0 0\n"), "12 space-separated fields"},
		{"double space", reseal(t, hdr+"agent 5  0 - - 1 1 - 0 0 0 0 -\n"), "space-separated"},
		{"leading zero", reseal(t, hdr+"agent 05 0 - - 1 1 - 0 0 0 0 -\n"), "pid"},
		{"sign", reseal(t, hdr+"agent 5 0 - - 1 +1 - 0 0 0 0 -\n"), "nonce"},
		{"stalled 2", reseal(t, hdr+"agent 5 0 - - 1 1 - 2 0 0 0 -\n"), "stalled"},
		{"duplicate pid", reseal(t, hdr+agentLine+agentLine), "line 5: pid 4242 appears twice"},
		{"count mismatch", []byte(hdr + agentLine + "end 2 00000000\n"), "checksum"},
		{"too many", reseal(t, hdr+agentLine+strings.Replace(agentLine, "4242", "4243", 1)+strings.Replace(agentLine, "4242", "4244", 1)), "3 records, more than the limit of 2"},
		{"long line", reseal(t, hdr+"agent "+strings.Repeat("1", 600)+"\n"), "longer than 512 bytes"},
		{"garbage after records", reseal(t, hdr+agentLine+"owner root\n"), "line 5: must be \"agent\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := state.ParseAgents(tt.data, 2)
			if err == nil {
				t.Fatalf("ParseAgents accepted %q", tt.data)
			}
			if !errors.Is(err, state.ErrFormat) {
				t.Errorf("error %v does not wrap ErrFormat", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestParseReplayRefuses(t *testing.T) {
	hdr := "varta-watch-state replay v1\nsaved 1\n"
	tests := []struct {
		name, body, want string
	}{
		{"upper-case hex", hdr + "sender 5 1 0102030405060AFF 1 - - 1 -\n", "lower-case hex"},
		{"short random", hdr + "sender 5 1 0102 1 - - 1 -\n", "16 hex digits"},
		{"counter too large", hdr + "sender 5 1 0102030405060708 4294967296 - - 1 -\n", "counter"},
		{"previous without current", hdr + "sender 5 1 - - 0102030405060708 1 1 -\n", "previous prefix without a current"},
		{"half-absent prefix", hdr + "sender 5 1 - 1 - - 1 -\n", "random \"-\""},
		{"no high-water mark", hdr + "sender 5 1 0102030405060708 1 - - - -\n", "needs a highest nonce"},
		{"unknown header", "varta-watch-state replay v1\nsaved 1\nboot -\n", "unknown line \"boot\""},
		{"duplicate pid", hdr + "sender 5 1 - - - - 1 -\nsender 5 1 - - - - 1 -\n", "appears twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := state.ParseReplay(reseal(t, tt.body), 10)
			if err == nil || !errors.Is(err, state.ErrFormat) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func newDir(t *testing.T) *state.Dir {
	t.Helper()
	d, err := state.OpenDir(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDirWriteRead(t *testing.T) {
	d := newDir(t)
	if st, err := os.Stat(d.Path()); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("created directory: %v %v, want mode 0700", st.Mode(), err)
	}
	if _, err := d.Read(state.AgentsFile, 1<<20); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v, want ErrNotExist", err)
	}
	for _, content := range []string{"first\n", "second, longer\n"} {
		if err := d.Write(state.AgentsFile, []byte(content)); err != nil {
			t.Fatal(err)
		}
		got, err := d.Read(state.AgentsFile, 1<<20)
		if err != nil || string(got) != content {
			t.Fatalf("Read = %q, %v; want %q", got, err, content)
		}
		st, _ := os.Stat(d.File(state.AgentsFile))
		if st.Mode().Perm() != 0o600 {
			t.Errorf("mode %v, want 0600", st.Mode().Perm())
		}
	}
	ents, _ := os.ReadDir(d.Path())
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the state file (no temporary left)", len(ents))
	}
	if _, err := d.Read(state.AgentsFile, 4); !errors.Is(err, secretfile.ErrTooLarge) {
		t.Errorf("over the limit: %v, want ErrTooLarge", err)
	}
}

func TestDirRefusesHostileFiles(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, d *state.Dir)
		rule  error
	}{
		{"group-readable", func(t *testing.T, d *state.Dir) {
			os.WriteFile(d.File(state.AgentsFile), []byte("x"), 0o640)
			os.Chmod(d.File(state.AgentsFile), 0o640)
		}, secretfile.ErrPermissive},
		{"symlink", func(t *testing.T, d *state.Dir) {
			other := filepath.Join(t.TempDir(), "planted")
			os.WriteFile(other, []byte("x"), 0o600)
			os.Symlink(other, d.File(state.AgentsFile))
		}, secretfile.ErrSymlink},
		{"directory", func(t *testing.T, d *state.Dir) {
			os.Mkdir(d.File(state.AgentsFile), 0o700)
		}, secretfile.ErrNotRegular},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDir(t)
			tt.setup(t, d)
			_, err := d.Read(state.AgentsFile, 1<<20)
			if !errors.Is(err, tt.rule) || !strings.Contains(err.Error(), d.File(state.AgentsFile)) {
				t.Fatalf("Read: %v, want %v naming the file", err, tt.rule)
			}
		})
	}
	t.Run("write replaces a planted symlink, never follows it", func(t *testing.T) {
		d := newDir(t)
		victim := filepath.Join(t.TempDir(), "victim")
		os.WriteFile(victim, []byte("keep"), 0o600)
		os.Symlink(victim, d.File(state.ReplayFile))
		if err := d.Write(state.ReplayFile, []byte("new\n")); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(victim); string(b) != "keep" {
			t.Fatalf("symlink target changed to %q", b)
		}
	})
}

func TestOpenDirRefuses(t *testing.T) {
	base := t.TempDir()
	wide := filepath.Join(base, "wide")
	os.Mkdir(wide, 0o700)
	os.Chmod(wide, 0o777)
	link := filepath.Join(base, "link")
	os.Symlink(wide, link)
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o600)
	tests := []struct{ path, want string }{
		{wide, "group/other-writable"},
		{link, "symlink"},
		{file, "not a directory"},
		{filepath.Join(base, "missing", "child"), "create"},
		{"", "empty path"},
	}
	for _, tt := range tests {
		if _, err := state.OpenDir(tt.path); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("OpenDir(%q) = %v, want error containing %q", tt.path, err, tt.want)
		}
	}
}

func TestReadBootID(t *testing.T) {
	if _, err := os.Stat(state.BootIDPath); err != nil {
		t.Skip("no boot id on this system")
	}
	if id := state.ReadBootID(); len(id) != 36 {
		t.Fatalf("ReadBootID = %q", id)
	}
}
