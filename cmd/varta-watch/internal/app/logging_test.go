package app

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
)

// TestTextHandlerQuotes: every value the daemon logs in the text format
// parses back to itself, one line per record: values with a space, '=',
// '"', a newline, a terminal escape or bad UTF-8 are quoted, plain ones
// are not, and a crafted command name cannot start a line of its own.
func TestTextHandlerQuotes(t *testing.T) {
	values := map[string]string{
		"plain":   "api.service",
		"space":   "the process is gone (a crash)",
		"equals":  "a=b",
		"quote":   `say "hi"`,
		"newline": "x\nvarta-watch: recovery completed pid=1",
		"escape":  "\x1b[31mred",
		"badutf8": "a\xffb",
		"empty":   "",
	}
	var buf bytes.Buffer
	log := slog.New(newTextHandler(&buf)).With("pid", 42)
	for k, v := range values {
		log.Warn("agent stalled: silent past the threshold", "comm", v, "case", k,
			"threshold", 1500*time.Millisecond, "err", errors.New("bind: address in use"))
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != len(values) {
		t.Fatalf("%d lines for %d records:\n%s", len(lines), len(values), buf.String())
	}
	for _, l := range lines {
		level, msg, attrs, err := testsupport.ParseLogLine(l)
		if err != nil {
			t.Fatal(err)
		}
		if level != "warn" || msg != "agent stalled: silent past the threshold" || attrs["pid"] != "42" ||
			attrs["threshold"] != "1.5s" || attrs["err"] != "bind: address in use" {
			t.Errorf("line %q parsed as %q %q %q", l, level, msg, attrs)
		}
		if want := values[attrs["case"]]; attrs["comm"] != want {
			t.Errorf("case %s: comm %q, want %q (line %q)", attrs["case"], attrs["comm"], want, l)
		}
	}
	if !strings.Contains(buf.String(), " comm=api.service ") {
		t.Errorf("a plain value is quoted:\n%s", buf.String())
	}
}
