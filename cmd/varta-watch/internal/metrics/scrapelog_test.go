package metrics

import (
	"bytes"
	"log"
	"strings"
	"testing"
	"time"
)

// TestScrapeErrorFilter: an aborted scrape's burst of per-family send
// errors becomes one line; other lines pass; the next reported send error
// says how many were suppressed.
func TestScrapeErrorFilter(t *testing.T) {
	var out bytes.Buffer
	f := newScrapeErrorFilter(&out)
	clock := time.Unix(1000, 0)
	f.now = func() time.Time { return clock }
	l := log.New(f, "metrics endpoint: ", 0)
	for range 60 { // one aborted scrape: every family fails
		l.Println("error encoding and sending metric family:", "write tcp 127.0.0.1:9464->127.0.0.1:5000: write: broken pipe")
	}
	l.Println("http: TLS handshake error from 10.0.0.1:1: EOF")
	clock = clock.Add(5 * time.Second) // the next aborted scrape
	for range 60 {
		l.Println("error encoding and sending metric family:", "write: connection reset by peer")
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	want := []string{
		"metrics endpoint: error encoding and sending metric family: write tcp 127.0.0.1:9464->127.0.0.1:5000: write: broken pipe",
		"metrics endpoint: http: TLS handshake error from 10.0.0.1:1: EOF",
		"metrics endpoint: error encoding and sending metric family: write: connection reset by peer (59 similar lines suppressed)",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}
