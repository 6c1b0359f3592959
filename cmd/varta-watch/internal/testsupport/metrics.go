package testsupport

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TokenFile writes a fresh 64-hex bearer token (mode 0600) to
// dir/prom.token and returns the path and the token.
func TokenFile(t testing.TB, dir string) (path, token string) {
	t.Helper()
	var b [32]byte
	rand.Read(b[:])
	token = hex.EncodeToString(b[:])
	path = filepath.Join(dir, "prom.token")
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, token
}

// MetricsClient scrapes a metrics endpoint with a bearer token. It opens
// a new connection for every scrape.
type MetricsClient struct {
	URL, Token string
	http       *http.Client
}

// NewMetricsClient returns a client of http://addr/metrics.
func NewMetricsClient(addr, token string) *MetricsClient {
	return &MetricsClient{URL: "http://" + addr + "/metrics", Token: token,
		http: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
}

// Scrape returns the HTTP status (-1 on a transport error) and the
// exposition as "series value" pairs. err reports a transport error, a
// status other than 200 (with the body) or a line that does not parse.
func (c *MetricsClient) Scrape() (int, map[string]float64, error) {
	req, err := http.NewRequest("GET", c.URL, nil)
	if err != nil {
		return -1, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := c.http.Do(req)
	if err != nil {
		return -1, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return resp.StatusCode, nil, fmt.Errorf("scrape %s: %s: %s", c.URL, resp.Status, b)
	}
	m, err := ParseExposition(resp.Body)
	return resp.StatusCode, m, err
}

// ParseExposition reads a text exposition into "series value" pairs
// (comments and blank lines skipped).
func ParseExposition(r io.Reader) (map[string]float64, error) {
	m := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			return m, fmt.Errorf("exposition line %q: no value", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return m, fmt.Errorf("exposition line %q: %v", line, err)
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// FreeUDPPort returns a loopback UDP port that was free a moment ago, as
// the decimal string a --udp-port flag takes.
func FreeUDPPort(t testing.TB) string {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port)
}
