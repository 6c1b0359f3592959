package load

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/varta-go/varta/pkg/agent"
)

func TestDrawPids(t *testing.T) {
	tests := []struct{ n, pidMax int }{
		{1, 3}, {10, 12}, {1000, 32768}, {32766, 32768},
	}
	for _, tt := range tests {
		pids := drawPids(tt.n, tt.pidMax, rand.New(rand.NewPCG(1, 2)))
		seen := map[uint32]bool{}
		for _, p := range pids {
			if p < 2 || int(p) >= tt.pidMax || seen[p] {
				t.Fatalf("n=%d pid_max=%d: bad or repeated pid %d", tt.n, tt.pidMax, p)
			}
			seen[p] = true
		}
		if len(seen) != tt.n {
			t.Fatalf("n=%d: %d distinct pids", tt.n, len(seen))
		}
	}
}

func TestChildLineRoundTrip(t *testing.T) {
	s := agent.Stats{Sent: 7, Failed: 1}
	s.Dropped[agent.KernelQueueFull] = 2
	s.Dropped[agent.StorageFull] = 3
	var r Report
	// 7 beats over 2 s (longer than the 1 s duration) is 3.5/s per child.
	line := formatChildLine(s, 2*time.Second)
	// Two children reporting the same line aggregate.
	first := parseChildLine(line, time.Second, &r)
	second := parseChildLine(line, time.Second, &r)
	if !first || !second {
		t.Fatal("line not parsed")
	}
	if r.AchievedRate != 7 {
		t.Fatalf("achieved %v, want 7", r.AchievedRate)
	}
	if r.Sent != 14 || r.Failed != 2 || r.Dropped[agent.KernelQueueFull] != 4 || r.Dropped[agent.StorageFull] != 6 || r.TotalDropped() != 10 {
		t.Fatalf("%+v", r)
	}
	if parseChildLine("garbage", time.Second, &r) {
		t.Fatal("garbage parsed")
	}
}

func TestValidate(t *testing.T) {
	ok := Options{Agents: 1, Rate: 1, Duration: 1, Target: agent.Options{UDPAddr: "x:1"}, PidMax: 100}
	tests := []struct {
		name string
		edit func(*Options)
	}{
		{"agents", func(o *Options) { o.Agents = 0 }},
		{"rate", func(o *Options) { o.Rate = 0 }},
		{"duration", func(o *Options) { o.Duration = 0 }},
		{"too many synthetic pids", func(o *Options) { o.Agents = 99 }},
		{"unix without child command", func(o *Options) { o.Target = agent.Options{SocketPath: "/s"} }},
	}
	if err := ok.validate(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.edit(&o)
			if o.validate() == nil {
				t.Fatal("accepted")
			}
		})
	}
}
