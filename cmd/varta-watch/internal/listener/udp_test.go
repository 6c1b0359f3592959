package listener

import (
	"errors"
	"net"
	"testing"
	"time"
)

func TestUDPBatchAndSizes(t *testing.T) {
	u, err := ListenUDP("127.0.0.1:0", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	c, err := net.Dial("udp", u.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sizes := []int{32, 59, 60, 64, 65, 300}
	for _, n := range sizes {
		if _, err := c.Write(make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
	b := NewBatch()
	var got []Datagram
	for len(got) < len(sizes) {
		n, err := u.Read(b)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b.D[:n]...)
	}
	port := uint16(c.LocalAddr().(*net.UDPAddr).Port)
	for i, d := range got {
		if d.Len != sizes[i] || d.Truncated != (sizes[i] > BufSize) || d.HasCreds {
			t.Errorf("datagram %d: %+v", i, d)
		}
		if d.Port != port {
			t.Errorf("datagram %d: port %d, want %d", i, d.Port, port)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:1": true, "[::1]:1": true, "0.0.0.0:1": false, "10.1.2.3:1": false, "bad": false} {
		if IsLoopback(addr) != want {
			t.Errorf("IsLoopback(%q) != %v", addr, want)
		}
	}
}

func TestUDPCloseWakesRead(t *testing.T) {
	u, err := ListenUDP("127.0.0.1:0", 0)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := u.Read(NewBatch())
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	u.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake a blocked Read")
	}
}
