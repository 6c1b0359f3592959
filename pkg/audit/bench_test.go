package audit

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// benchLogBytes is the size of the generated log (audit.md §4 asks for
// ≥ 200 MB/s on one core and constant memory).
const benchLogBytes = 128 << 20

// generateLog writes a chained log of at least size bytes directly (the
// Writer would fsync every record) and returns its path and head.
func generateLog(b *testing.B, size int64) (string, Hash) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "audit.log")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	bw.WriteString(HeaderV2 + "\n")
	var written int64
	prev := ZeroHash
	buf := make([]byte, 0, 512)
	for seq := uint64(1); written < size; seq++ {
		wall := int64(1700000000000 + seq*37)
		pid := uint32(1000 + seq%4096)
		var r Record
		switch {
		case seq == 1:
			r = Record{Kind: KindBoot, Boot: BootRecord{WallclockMs: wall, DaemonPid: 321, Reason: BootFresh}}
		case seq%3 == 0:
			r = Record{Kind: KindSpawn, Spawn: SpawnRecord{WallclockMs: wall, ObserverNs: seq * 1e6, AgentPid: pid, ChildPid: uint32(seq),
				Program: "/usr/local/bin/restart-agent", Source: "/etc/varta/recovery.cmd", TemplateLen: 41}}
		case seq%3 == 1:
			r = Record{Kind: KindComplete, Complete: CompleteRecord{WallclockMs: wall, ObserverNs: seq * 1e6, AgentPid: pid, ChildPid: uint32(seq - 1),
				Outcome: OutcomeReaped, ExitCode: 0, DurationNs: 1500000000 + seq, StdoutLen: 120, StderrLen: 0}}
		default:
			r = Record{Kind: KindRefused, Refused: RefusedRecord{WallclockMs: wall, ObserverNs: seq * 1e6, AgentPid: pid, Reason: RefusedUnauthenticated}}
		}
		r.Seq = seq
		r.Link(prev)
		prev = r.Chain
		buf = r.AppendLine(buf[:0])
		bw.Write(buf)
		written += int64(len(buf))
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path, prev
}

// BenchmarkVerify measures verification throughput over a generated
// 128 MiB log (run: go test -run '^$' -bench Verify -benchtime 5x ./pkg/audit).
// The heap in use after verifying must not grow with the log.
func BenchmarkVerify(b *testing.B) {
	path, head := generateLog(b, benchLogBytes)
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	var peak uint64
	for b.Loop() {
		var maxHeap uint64
		var ms runtime.MemStats
		n := 0
		rep, err := Verify(path, VerifyOptions{Anchor: &head, Progress: func(int64) {
			if n++; n%32 == 0 {
				runtime.ReadMemStats(&ms)
				maxHeap = max(maxHeap, ms.HeapInuse)
			}
		}})
		if err != nil {
			b.Fatal(err)
		}
		if !rep.Intact() || !rep.Anchor.Found {
			b.Fatalf("generated log does not verify: %v", rep.Failures)
		}
		peak = max(peak, maxHeap)
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}
