package audit

import (
	"bufio"
	"bytes"
	"os"
	"testing"
)

// examplePath is the repository's copy of the reference example audit log
// (kept byte-identical to the upstream copy, see pkg/vlp's
// TestVectorCopiesMatchUpstream).
const examplePath = "testdata/audit-example.log"

func readExample(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatalf("read the example audit file: %v", err)
	}
	return b
}

func TestChainHashCheckValue(t *testing.T) {
	body := []byte("1\t1700000000000\t0\tboot\t1234\t-\tfresh")
	got := ChainHash(ZeroHash, KindBoot, body)
	const want = "ea3737cc98db3db7f5be0f369c21b100c0eae318b0b050d67bb2ac80553435e8"
	if got.String() != want {
		t.Fatalf("ChainHash = %s, want %s", got, want)
	}
	// The same record built from fields links to the same value.
	r := Record{Seq: 1, Kind: KindBoot, Boot: BootRecord{WallclockMs: 1700000000000, DaemonPid: 1234, Reason: BootFresh}}
	r.Link(ZeroHash)
	if r.Chain.String() != want {
		t.Fatalf("Record.Link = %s, want %s", r.Chain, want)
	}
}

// TestExampleReencodes parses every record of the example file and checks
// that encoding the parsed records reproduces the file byte for byte, and
// that each chain links to the previous record's.
func TestExampleReencodes(t *testing.T) {
	raw := readExample(t)
	var out bytes.Buffer
	prev := ZeroHash
	sc := bufio.NewScanner(bytes.NewReader(raw))
	records := 0
	for line := 1; sc.Scan(); line++ {
		text := sc.Bytes()
		if bytes.HasPrefix(text, []byte("#")) {
			out.Write(text)
			out.WriteByte('\n')
			continue
		}
		r, err := ParseLine(text)
		if err != nil {
			t.Fatalf("line %d: %v", line, err)
		}
		want := r.Chain
		r.Link(prev)
		if r.Chain != want {
			t.Fatalf("line %d seq %d: chain %s, recomputed %s", line, r.Seq, want, r.Chain)
		}
		// The Writer's path links and encodes in one pass.
		r.Chain, r.Unchained = Hash{}, true
		if got := r.appendLinked([]byte("x"), prev); string(got) != "x"+string(text)+"\n" || r.Chain != want || r.Unchained {
			t.Fatalf("line %d seq %d: appendLinked = %q (chain %s), want the line with chain %s", line, r.Seq, got, r.Chain, want)
		}
		prev = r.Chain
		out.Write(r.AppendLine(nil))
		records++
	}
	if records != 5 {
		t.Fatalf("example holds %d records, want 5", records)
	}
	if !bytes.Equal(out.Bytes(), raw) {
		t.Fatalf("re-encoding differs:\n%s\nwant:\n%s", out.Bytes(), raw)
	}
}

// TestLinkDoesNotAllocate pins the Writer's per-record encoding (link and
// line) to zero allocations into a reused buffer.
func TestLinkDoesNotAllocate(t *testing.T) {
	r := Record{Seq: 7, Kind: KindSpawn, Spawn: SpawnRecord{WallclockMs: 1700000000000, ObserverNs: 5e9, AgentPid: 4242, ChildPid: 4343,
		Program: "/usr/local/bin/restart-agent", Source: "/etc/varta/recovery.cmd", TemplateLen: 41}}
	buf := make([]byte, 0, 512)
	if n := testing.AllocsPerRun(100, func() { buf, _ = headerAndBoot(buf[:0], false, true, &r, ZeroHash) }); n != 0 {
		t.Fatalf("headerAndBoot: %v allocs per record, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { r.Link(ZeroHash) }); n != 0 {
		t.Fatalf("Link: %v allocs, want 0", n)
	}
}
