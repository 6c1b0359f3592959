package secure_test

import (
	"testing"
	"time"

	"github.com/varta-go/varta/pkg/vlp/secure"
)

// TestReplayRestoreRefusesOldFrames: a guard restored from the marks of
// another guard refuses exactly what the original would have refused.
func TestReplayRestoreRefusesOldFrames(t *testing.T) {
	A, R := secure.Accepted, secure.Replay
	before := []step{
		{0, 0xA, 0, beat(10, 1), A},
		{0, 0xA, 1, beat(10, 2), A},
		{time.Second, 0xB, 0, beat(10, 3), A}, // prefix rotation: 0xA becomes previous
		{time.Second, 1, 7, beat(11, 40), A},
		{time.Second, 1, 8, terminal(11, 41), A},
	}
	after := []step{
		{2 * time.Second, 0xA, 0, beat(10, 1), R},
		{2 * time.Second, 0xA, 1, beat(10, 2), R},
		{2 * time.Second, 0xB, 0, beat(10, 3), R},
		{2 * time.Second, 0xC, 0, beat(10, 2), R},     // new prefix, stale nonce
		{2 * time.Second, 1, 7, beat(11, 40), R},      // same prefix, old counter
		{2 * time.Second, 9, 0, terminal(11, 41), R},  // new prefix, stale terminal
		{2 * time.Second, 0xA, 2, beat(10, 4), A},     // late frame of the previous prefix
		{2 * time.Second, 0xB, 1, beat(10, 5), A},     // the sender carries on
		{2 * time.Second, 9, 0, terminal(11, 100), A}, // a newer terminal
	}
	orig := secure.NewReplayGuard(secure.ReplayConfig{})
	runSteps(t, orig, before)
	marks := orig.Marks(nil)
	if len(marks) != 2 || marks[0].Pid != 10 || marks[1].Pid != 11 {
		t.Fatalf("marks = %+v, want pids 10 then 11 (least recent first)", marks)
	}

	g := secure.NewReplayGuard(secure.ReplayConfig{})
	if n := g.Restore(t0.Add(2*time.Second), marks); n != 2 {
		t.Fatalf("Restore = %d, want 2", n)
	}
	runSteps(t, g, after)

	// Without the marks the same frames are accepted: the test can fail.
	fresh := secure.NewReplayGuard(secure.ReplayConfig{})
	if v := fresh.Check(t0, secure.IV{Random: prefix(0xB), Counter: 0}, beat(10, 3)); v != A {
		t.Fatalf("fresh guard: %v", v)
	}
}

func TestReplayRestoreBounds(t *testing.T) {
	mark := func(pid uint32, at time.Duration) secure.SenderMark {
		return secure.SenderMark{Pid: pid, LastSeen: t0.Add(at), Cur: secure.PrefixMark{Random: prefix(1), HW: 5, Set: true}, MaxNonce: 5, HasNonce: true}
	}
	tests := []struct {
		name     string
		capacity int
		marks    []secure.SenderMark
		want     int
		refused  []uint32 // pids whose old frame must be refused afterwards
		accepted []uint32 // pids not restored
	}{
		{"idle marks are skipped", 8, []secure.SenderMark{mark(1, -11*time.Minute), mark(2, -time.Minute)}, 1, []uint32{2}, []uint32{1}},
		{"capacity keeps the newest", 2, []secure.SenderMark{mark(1, -3*time.Second), mark(2, -time.Second), mark(3, -2*time.Second)}, 2, []uint32{2, 3}, []uint32{1}},
		{"duplicate pids: the newer wins", 8, []secure.SenderMark{mark(4, -time.Second), mark(4, -2*time.Second)}, 1, []uint32{4}, nil},
		{"a future LastSeen is clamped to now", 8, []secure.SenderMark{mark(5, time.Hour)}, 1, []uint32{5}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := secure.NewReplayGuard(secure.ReplayConfig{Capacity: tt.capacity})
			if n := g.Restore(t0, tt.marks); n != tt.want {
				t.Fatalf("Restore = %d, want %d", n, tt.want)
			}
			for _, pid := range tt.refused {
				if v := g.Check(t0, secure.IV{Random: prefix(1), Counter: 5}, beat(pid, 5)); v != secure.Replay {
					t.Errorf("pid %d: old frame %v, want replay", pid, v)
				}
			}
			kept := map[uint32]bool{}
			for _, m := range g.Marks(nil) {
				kept[m.Pid] = true
			}
			for _, pid := range tt.accepted {
				if kept[pid] {
					t.Errorf("pid %d was restored, want skipped", pid)
				}
			}
		})
	}
}
