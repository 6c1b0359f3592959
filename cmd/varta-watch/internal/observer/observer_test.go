package observer

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/varta-go/varta/cmd/varta-watch/internal/events"
	"github.com/varta-go/varta/cmd/varta-watch/internal/tracker"
	"github.com/varta-go/varta/pkg/vlp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestObserverInProcess runs the daemon's observer in this process: a
// beat over the real socket is tracked, silence surfaces exactly one
// stall at or after the threshold, and cancelling the context shuts
// everything down (socket removed, events flushed, no goroutine left).
func TestObserverInProcess(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "s.sock")
	eventsPath := filepath.Join(dir, "events.tsv")
	o, err := Start(Options{
		Threshold:       100 * time.Millisecond,
		TrackerCapacity: 16,
		MaxBeatRate:     100,
		TickInterval:    20 * time.Millisecond,
		Export:          &events.Options{Path: eventsPath},
		ShutdownGrace:   time.Second,
		Unix:            unixOpts(sock),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()

	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f := vlp.Frame{Pid: uint32(os.Getpid()), Nonce: 1, Payload: 9}
	w := f.Marshal()
	if _, err := c.Write(w[:]); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	var snap tracker.Snapshot
	deadline := time.Now().Add(10 * time.Second)
	for {
		var ok bool
		snap, ok = o.Tracker().Lookup(uint32(os.Getpid()))
		if ok && snap.Stalled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no stall: %+v", snap)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if since := time.Since(sent); since < 100*time.Millisecond {
		t.Fatalf("stalled %v after the beat, before the threshold", since)
	}
	if snap.Beats != 1 || snap.Stalls != 1 || snap.Origin != vlp.OriginKernelAttested || snap.Generation == 0 {
		t.Fatalf("%+v", snap)
	}
	if o.Counters().StallDetectionLag.Quantile(1) == 0 {
		t.Fatal("stall lag not observed")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left behind: %v", err)
	}
	b, err := os.ReadFile(eventsPath)
	if err != nil || len(b) == 0 {
		t.Fatalf("events file: %v %q", err, b)
	}
}

// TestStartFailureCleansUp: a failure after the socket was bound (an
// events file that may not be written) removes the socket again.
func TestStartFailureCleansUp(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "s.sock")
	target := filepath.Join(dir, "elsewhere")
	os.WriteFile(target, nil, 0o600)
	link := filepath.Join(dir, "events.tsv")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	_, err := Start(Options{Threshold: time.Second, TrackerCapacity: 4, Unix: unixOpts(sock), Export: &events.Options{Path: link}})
	if err == nil {
		t.Fatal("events file behind a symlink accepted")
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left behind after a failed start: %v", err)
	}
}
