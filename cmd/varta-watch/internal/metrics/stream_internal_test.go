package metrics

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/common/expfmt"

	"github.com/varta-go/varta/pkg/vlp"
)

// TestStreamersMatchEncoder checks, for every format the handler can
// negotiate, whether the per-pid families are streamed, and that streamed
// output equals the expfmt encoder's output for the materialised families
// on a table of a few thousand rows (pids of 1 to 10 digits, values in
// exponent form, 0 and 1) written through a small buffer.
func TestStreamersMatchEncoder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	src := make(tableSource, 0, 5000)
	src = append(src, AgentView{Pid: 0}, AgentView{Pid: 1, Beats: 1, Stalls: 1, Status: 1, Payload: 1},
		AgentView{Pid: 4294967295, Beats: 1 << 63, Payload: 4294967295, Status: vlp.StatusStall})
	for len(src) < cap(src) {
		src = append(src, AgentView{Pid: rng.Uint32() >> rng.UintN(32), Beats: rng.Uint64() >> rng.UintN(64),
			Stalls: rng.Uint64N(4), Status: vlp.Status(rng.IntN(4)), Payload: rng.Uint32()})
	}
	_, rows := newAgentGatherer(src, true).snapshot()
	mfs := perPidFamilies(rows)
	tests := []struct {
		format expfmt.Format
		stream bool
	}{
		{expfmt.NewFormat(expfmt.TypeTextPlain), true},
		{expfmt.FmtText + "; escaping=underscores", true},
		{expfmt.FmtText + "; escaping=allow-utf-8", true},
		{expfmt.FmtText + "; escaping=values", true},
		{"text/plain; version=1.0.0; charset=utf-8", false}, // unknown to this expfmt
		{expfmt.FmtProtoDelim + "; escaping=underscores", true},
		{expfmt.FmtProtoDelim + "; escaping=allow-utf-8", true},
		{expfmt.FmtProtoCompact, false},
		{expfmt.FmtProtoText, false},
		{expfmt.FmtOpenMetrics_1_0_0, false}, // not negotiated by the handler
	}
	for _, tc := range tests {
		t.Run(string(tc.format), func(t *testing.T) {
			streamers, ok := newStreamers(tc.format)
			if ok != tc.stream {
				t.Fatalf("streamed %v, want %v", ok, tc.stream)
			}
			if !ok {
				return
			}
			for k := range perPidFams {
				var want, got bytes.Buffer
				if err := expfmt.NewEncoder(&want, tc.format).Encode(mfs[k]); err != nil {
					t.Fatal(err)
				}
				if _, err := streamers[k].write(&got, rows, k, make([]byte, 0, 16)); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.Bytes(), want.Bytes()) {
					t.Fatalf("family %s: streamed %d bytes differ from the encoder's %d", perPidFams[k].name, got.Len(), want.Len())
				}
			}
		})
	}
}

type tableSource []AgentView

func (s tableSource) EachAgent(fn func(AgentView)) {
	for _, a := range s {
		fn(a)
	}
}
func (s tableSource) Tracked() int  { return len(s) }
func (s tableSource) Capacity() int { return len(s) }
