package listener

import (
	"net"
	"testing"
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
	for i, d := range got {
		if d.Len != sizes[i] || d.Truncated != (sizes[i] > BufSize) || d.HasCreds {
			t.Errorf("datagram %d: %+v", i, d)
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
