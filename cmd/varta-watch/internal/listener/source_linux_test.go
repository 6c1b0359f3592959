package listener

import (
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"
)

// TestUDPSourceAndArrival: each UDP datagram carries its sender's address
// and port, and the kernel's arrival time, for IPv4 and IPv6.
func TestUDPSourceAndArrival(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(addr, func(t *testing.T) {
			u, err := ListenUDP(addr, 0)
			if err != nil {
				t.Skipf("bind %s: %v", addr, err)
			}
			defer u.Close()
			var senders []*net.UDPConn
			for i := 0; i < 2; i++ {
				c, err := net.DialUDP("udp", nil, u.Addr().(*net.UDPAddr))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				senders = append(senders, c)
			}
			before := time.Now().UnixNano()
			for _, c := range senders {
				c.Write(make([]byte, 32))
			}
			b := NewBatch()
			var got []Datagram
			for len(got) < 2 {
				n, err := u.Read(b)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, b.D[:n]...)
			}
			after := time.Now().UnixNano()
			for i, d := range got {
				want := senders[i].LocalAddr().(*net.UDPAddr).AddrPort()
				want = netip.AddrPortFrom(want.Addr().Unmap(), want.Port())
				if d.From != want {
					t.Errorf("datagram %d from %v, want %v", i, d.From, want)
				}
				if d.Arrival < before || d.Arrival > after {
					t.Errorf("datagram %d arrival %d outside [%d, %d]", i, d.Arrival, before, after)
				}
			}
		})
	}
}

// TestUnixArrival: a datagram read long after it was sent carries the
// time it was queued, not the time it was read.
func TestUnixArrival(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	u, err := ListenUnix(UnixOptions{Path: path, Mode: 0o600})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sent := time.Now().UnixNano()
	c.Write(make([]byte, 32))
	time.Sleep(200 * time.Millisecond)
	b := NewBatch()
	if _, err := u.Read(b); err != nil {
		t.Fatal(err)
	}
	read := time.Now().UnixNano()
	if a := b.D[0].Arrival; a < sent || a > sent+int64(100*time.Millisecond) || read-a < int64(200*time.Millisecond) {
		t.Fatalf("arrival %d: sent %d, read %d", a, sent, read)
	}
	if !b.D[0].HasCreds {
		t.Fatal("credentials lost next to the timestamp")
	}
}

// TestQueued: Queued sees a waiting datagram on both listeners and
// nothing once it is read.
func TestQueued(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	ux, err := ListenUnix(UnixOptions{Path: path, Mode: 0o600})
	if err != nil {
		t.Fatal(err)
	}
	defer ux.Close()
	ud, err := ListenUDP("127.0.0.1:0", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ud.Close()
	uc, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	dc, err := net.Dial("udp", ud.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	for _, l := range []struct {
		name string
		conn net.Conn
		q    func() bool
		read func(*Batch) (int, error)
	}{{"unix", uc, ux.Queued, ux.Read}, {"udp", dc, ud.Queued, ud.Read}} {
		if l.q() {
			t.Fatalf("%s: queued before any datagram", l.name)
		}
		l.conn.Write(make([]byte, 32))
		deadline := time.Now().Add(2 * time.Second)
		for !l.q() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: datagram never seen queued", l.name)
			}
			time.Sleep(time.Millisecond)
		}
		if _, err := l.read(NewBatch()); err != nil {
			t.Fatal(err)
		}
		if l.q() {
			t.Fatalf("%s: still queued after the read", l.name)
		}
	}
}

// TestQuietWhileBatchHeld: with HoldBatches, a batch that was read but not
// released keeps the listener from being quiet.
func TestQuietWhileBatchHeld(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	u, err := ListenUnix(UnixOptions{Path: path, Mode: 0o600})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.HoldBatches()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !u.Quiet() {
		t.Fatal("not quiet before any datagram")
	}
	c.Write(make([]byte, 32))
	if _, err := u.Read(NewBatch()); err != nil {
		t.Fatal(err)
	}
	if u.Quiet() {
		t.Fatal("quiet while the batch is held")
	}
	u.Release()
	if !u.Quiet() {
		t.Fatal("not quiet after Release")
	}
}
