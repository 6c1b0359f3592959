package beatloop

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/pkg/agent"
)

func TestReporterRateLimits(t *testing.T) {
	drop := agent.Classify(syscall.ECONNREFUSED)
	drop.Nonce = 4
	tests := []struct {
		name    string
		every   time.Duration
		results []agent.Result
		want    string
	}{
		{"sent is silent", time.Second, []agent.Result{{Outcome: agent.Sent, Nonce: 1}}, ""},
		{"one line per period", time.Hour, []agent.Result{drop, drop, drop},
			"vb: beat nonce 4 dropped: NoObserver (connection refused)\nvb: 2 similar lines suppressed\n"},
		{"no limit", 0, []agent.Result{drop, drop},
			"vb: beat nonce 4 dropped: NoObserver (connection refused)\nvb: beat nonce 4 dropped: NoObserver (connection refused)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			r := &Reporter{W: &b, Prefix: "vb: ", Every: tt.every}
			for _, res := range tt.results {
				r.Report("beat", res)
			}
			r.Flush()
			if b.String() != tt.want {
				t.Fatalf("got %q, want %q", b.String(), tt.want)
			}
		})
	}
}
