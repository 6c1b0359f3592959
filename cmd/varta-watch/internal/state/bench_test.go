package state_test

import (
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/state"
	"github.com/varta-go/varta/pkg/vlp"
	"github.com/varta-go/varta/pkg/vlp/secure"
)

func benchAgents(n int) *state.Agents {
	a := &state.Agents{Saved: time.Now().UnixNano(), BootID: boot, Agents: make([]state.Agent, n)}
	for i := range a.Agents {
		a.Agents[i] = state.Agent{Pid: uint32(1000 + i), Origin: vlp.OriginKernelAttested, StartTime: 12345678 + uint64(i),
			NSInode: 4026531836, LastBeat: a.Saved - int64(i)*1e6, Nonce: uint64(i) * 7, HasNonce: true, Beats: uint64(i) * 7}
	}
	return a
}

func benchMarks(n int) []secure.SenderMark {
	m := make([]secure.SenderMark, n)
	for i := range m {
		m[i] = secure.SenderMark{Pid: uint32(1000 + i), LastSeen: time.Unix(0, 1_700_000_000_000_000_000+int64(i)),
			Cur: secure.PrefixMark{Random: [8]byte{byte(i), 1, 2, 3, 4, 5, 6, 7}, HW: uint32(i), Set: true}, MaxNonce: uint64(i), HasNonce: true}
	}
	return m
}

// BenchmarkEncodeAgents10k: the encoding part of one periodic save at
// 10,000 agents (done on the control loop; the write is not).
func BenchmarkEncodeAgents10k(b *testing.B) {
	a := benchAgents(10000)
	b.ReportAllocs()
	var size int
	for b.Loop() {
		size = len(state.EncodeAgents(a))
	}
	b.ReportMetric(float64(size), "bytes/file")
}

// BenchmarkParseAgents10k: loading 10,000 agents at start.
func BenchmarkParseAgents10k(b *testing.B) {
	data := state.EncodeAgents(benchAgents(10000))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := state.ParseAgents(data, 10000); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeReplay10k: the replay marks of 10,000 secure senders.
func BenchmarkEncodeReplay10k(b *testing.B) {
	m := benchMarks(10000)
	b.ReportAllocs()
	var size int
	for b.Loop() {
		size = len(state.EncodeReplay(1, m))
	}
	b.ReportMetric(float64(size), "bytes/file")
}

// BenchmarkWriteAgents10k: one atomic write (temp file, fsync, rename,
// directory fsync) of a 10,000-agent file, on the writer goroutine.
func BenchmarkWriteAgents10k(b *testing.B) {
	d, err := state.OpenDir(b.TempDir() + "/state")
	if err != nil {
		b.Fatal(err)
	}
	data := state.EncodeAgents(benchAgents(10000))
	for b.Loop() {
		if err := d.Write(state.AgentsFile, data); err != nil {
			b.Fatal(err)
		}
	}
}
