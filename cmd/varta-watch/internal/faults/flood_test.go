package faults

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
)

// TestUnixFlood: one local process floods the Unix socket with random,
// bad-CRC and spoofed-pid frames while 20 honest agents beat every 100 ms
// (threshold 1 s). No honest agent may be stalled; the flood is counted
// and charged to its sender; the events file stays small (decode and
// mismatch lines are rate-limited with a counted summary).
func TestUnixFlood(t *testing.T) {
	const threshold = time.Second
	d := startObserved(t, "--threshold-ms", "1000")
	a := d.startFleet(20, "--socket", d.Socket, "--interval", "100ms")
	time.Sleep(1500 * time.Millisecond)
	before := d.metrics()
	from := lastNs(d.ReadEvents())
	size0 := d.eventsSize()

	dur := pick(4*time.Second, 20*time.Second)
	sent := flood(t, "unixflood", d.Socket, "mix", dur)
	time.Sleep(threshold + 500*time.Millisecond) // a stall the flood caused has surfaced by now

	evs := d.ReadEvents()
	v := judge(evs, a.pids, from, lastNs(evs), threshold)
	after := d.metrics()
	t.Logf("flood: %d datagrams in %v (%.0f/s) from one process; the daemon received %.0f",
		sent, dur, float64(sent)/dur.Seconds(), sum(after, "varta_datagrams_received_total")-sum(before, "varta_datagrams_received_total"))
	t.Logf("20 honest agents (100 ms, threshold 1 s): %s; agent drop-report lines %d", v, a.dropLines())
	t.Logf("events file grew %d bytes; other lines by kind %v", d.eventsSize()-size0, otherLines(evs, a.pids, from))
	t.Logf("counters:%s", delta(before, after, "varta_frame", "varta_decode", "varta_rate_limited", "varta_ingest", "varta_sender", "varta_events", "varta_truncated"))
	if v.stalls != 0 {
		t.Errorf("%d false stalls of honest agents under the flood", v.stalls)
	}
	// The flood costs its sender: beyond its allowance (32 refused
	// datagrams, then 4 a second) every datagram it sent is dropped on
	// arrival and counted against it, and none reaches the global bucket
	// the honest agents share.
	throttled := after[`varta_sender_throttled_total{transport="unix"}`] - before[`varta_sender_throttled_total{transport="unix"}`]
	allowance := 32 + 4*(dur+threshold+3*time.Second).Seconds()
	if float64(sent)-throttled > allowance {
		t.Errorf("%d datagrams flooded, %.0f dropped as their sender's: more than its allowance of %.0f got past the sender throttle", sent, throttled, allowance)
	}
	if g := after[`varta_rate_limited_total{reason="global"}`] - before[`varta_rate_limited_total{reason="global"}`]; g != 0 {
		t.Errorf("the global bucket dropped %.0f frames under a one-process flood", g)
	}
}

// TestSecureUDPFlood: one process floods the secure UDP port with random
// 60-byte datagrams (no key) while 10 honest secure agents beat every
// 100 ms (threshold 1 s). The garbage is charged to its source address
// before any AEAD work beyond its allowance, and never to the global
// bucket (charged only after authentication): no honest agent stalls.
func TestSecureUDPFlood(t *testing.T) {
	const threshold = time.Second
	dir := testsupport.ShortDir(t)
	var key [32]byte
	rand.Read(key[:])
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(key[:])+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := testsupport.FreeUDPPort(t)
	addr := "127.0.0.1:" + port
	d := startObserved(t, "--threshold-ms", "1000", "--udp-port", port, "--key-file", keyFile)
	a := d.startFleet(10, "--udp", addr, "--key-file", keyFile, "--interval", "100ms")
	time.Sleep(1500 * time.Millisecond)
	before := d.metrics()
	from := lastNs(d.ReadEvents())

	dur := pick(4*time.Second, 20*time.Second)
	sent := flood(t, "udpflood", addr, "60", dur)
	time.Sleep(threshold + 500*time.Millisecond)

	evs := d.ReadEvents()
	v := judge(evs, a.pids, from, lastNs(evs), threshold)
	after := d.metrics()
	recv := sum(after, "varta_datagrams_received_total") - sum(before, "varta_datagrams_received_total")
	aead := sum(after, "varta_secure_aead_attempts_total") - sum(before, "varta_secure_aead_attempts_total")
	t.Logf("flood: %d random 60-byte datagrams in %v (%.0f/s) from one socket; the daemon received %.0f (%.0f%%), AEAD attempts %.0f",
		sent, dur, float64(sent)/dur.Seconds(), recv, 100*recv/float64(sent), aead)
	t.Logf("10 honest secure agents (100 ms, threshold 1 s): %s", v)
	t.Logf("counters:%s", delta(before, after, "varta_frame", "varta_rate_limited", "varta_sender", "varta_secure", "varta_truncated"))
	if v.stalls != 0 {
		t.Errorf("%d false stalls of honest agents under the flood", v.stalls)
	}
	if g := after[`varta_rate_limited_total{reason="global"}`] - before[`varta_rate_limited_total{reason="global"}`]; g != 0 {
		t.Errorf("the global bucket dropped %.0f frames: unauthenticated garbage reached it", g)
	}
	if honest := float64(v.beats); aead > honest+2*float64(dur/time.Second+2)*4+64 {
		t.Errorf("%.0f AEAD attempts for %d honest beats: the garbage is not bounded per source", aead, v.beats)
	}
}

// TestEventsFileUnderFlood: a flood of undecodable and spoofed frames
// writes a bounded number of decode and mismatch lines, and summary lines
// count the ones left out (the flood cannot fill the disk).
func TestEventsFileUnderFlood(t *testing.T) {
	d := startObserved(t, "--threshold-ms", "1000")
	size0 := d.eventsSize()
	dur := pick(3*time.Second, 15*time.Second)
	// Rounds of four new processes for 250 ms: each is throttled after
	// its allowance of refused datagrams, so fresh processes are the most
	// lines a local attacker gets past the sender throttle; the line
	// limit bounds them.
	var sent atomic.Int64
	procs := 0
	for end := time.Now().Add(dur); time.Now().Before(end); procs += 4 {
		var wg sync.WaitGroup
		for k := 0; k < 4; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sent.Add(int64(flood(t, "unixflood", d.Socket, "mix", 250*time.Millisecond)))
			}()
		}
		wg.Wait()
	}
	var evs []event
	testsupport.Eventually(t, 10*time.Second, "summary lines", func() bool {
		evs = d.ReadEvents()
		for _, e := range evs {
			if strings.HasPrefix(e.Payload, "suppressed ") {
				return true
			}
		}
		return false
	})
	m := d.metrics()
	lines := map[string]int{}
	var summaries []string
	for _, e := range evs {
		lines[e.Kind]++
		if strings.HasPrefix(e.Payload, "suppressed ") {
			summaries = append(summaries, e.Kind+": "+e.Payload)
		}
	}
	grew := d.eventsSize() - size0
	t.Logf("flood: %d hostile datagrams in %v from %d processes (rounds of four); events file grew %d bytes (%.0f bytes/s): lines %v",
		sent.Load(), dur, procs, grew, float64(grew)/dur.Seconds(), lines)
	t.Logf("summary lines: %v; varta_events_suppressed_total: decode %v, mismatch %v",
		summaries, m[`varta_events_suppressed_total{kind="decode"}`], m[`varta_events_suppressed_total{kind="mismatch"}`])
	// Per kind: the burst, the refill over the flood and the wait, and the
	// summaries.
	limit := 64 + 10*int((dur+12*time.Second)/time.Second) + 4
	for _, k := range []string{"decode", "mismatch"} {
		if lines[k] > limit {
			t.Errorf("%d %s lines, the limit allows %d", lines[k], k, limit)
		}
	}
	if sum(m, "varta_events_suppressed_total") == 0 {
		t.Error("nothing suppressed: the flood did not reach the limit")
	}
}
