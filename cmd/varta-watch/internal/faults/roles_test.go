package faults

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/varta-go/varta/pkg/vlp"
)

// roleEnv switches the test binary into a helper process (runRole).
const roleEnv = "VARTA_FAULTS_ROLE"

// runRole is the helper-process mode of the test binary. spec is
// "unixflood|SOCKET|MODE|DURATION" or "udpflood|ADDR|SIZE|DURATION"; the
// flooder sends as fast as the socket takes datagrams for DURATION and
// prints how many it sent.
func runRole(spec string) int {
	parts := strings.Split(spec, "|")
	if len(parts) != 4 {
		fmt.Fprintln(os.Stderr, "bad role spec", spec)
		return 2
	}
	dur, err := time.ParseDuration(parts[3])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var c net.Conn
	var pool [][]byte
	switch parts[0] {
	case "unixflood":
		c, err = net.DialUnix("unixgram", nil, &net.UnixAddr{Name: parts[1], Net: "unixgram"})
		pool = unixFloodPool(parts[2])
	case "udpflood":
		c, err = net.Dial("udp", parts[1])
		size, _ := strconv.Atoi(parts[2])
		pool = randomPool(size)
	default:
		fmt.Fprintln(os.Stderr, "unknown role", parts[0])
		return 2
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sent := 0
	end := time.Now().Add(dur)
	for i := 0; ; i++ {
		if i&255 == 0 && time.Now().After(end) {
			break
		}
		if _, err := c.Write(pool[i&(len(pool)-1)]); err == nil {
			sent++
		}
	}
	fmt.Println(sent)
	return 0
}

// randomPool is 1024 random datagrams of size bytes.
func randomPool(size int) [][]byte {
	pool := make([][]byte, 1024)
	for i := range pool {
		pool[i] = make([]byte, size)
		rand.Read(pool[i])
	}
	return pool
}

// unixFloodPool is 1024 hostile 32-byte frames: random bytes, frames with
// a bad CRC, frames claiming another pid (spoofed), or all three mixed.
func unixFloodPool(mode string) [][]byte {
	pool := randomPool(vlp.FrameSize)
	for i := range pool {
		m := mode
		if mode == "mix" {
			m = []string{"random", "badcrc", "spoofed"}[i%3]
		}
		f := vlp.Frame{Status: vlp.StatusOk, Pid: uint32(100000 + i), Nonce: uint64(i + 1)}
		w := f.Marshal()
		switch m {
		case "badcrc":
			binary.LittleEndian.PutUint32(w[28:], binary.LittleEndian.Uint32(w[28:])^0x5a5a)
			copy(pool[i], w[:])
		case "spoofed":
			copy(pool[i], w[:])
		}
	}
	return pool
}

// flood runs a flooder process for dur and returns how many datagrams it
// sent. It may be called from several goroutines.
func flood(t *testing.T, kind, target, mode string, dur time.Duration) int {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), roleEnv+"="+strings.Join([]string{kind, target, mode, dur.String()}, "|"))
	out, err := cmd.Output()
	if err != nil {
		t.Errorf("flooder: %v", err) // Errorf: flood may run on another goroutine
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Errorf("flooder output %q", out)
		return 0
	}
	return n
}
