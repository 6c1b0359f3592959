package recovery

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

// TestForwarderLines: output chunks become one log line per output line,
// named by child, agent and stream; long lines are cut, control bytes
// escaped, unterminated last lines flushed, and lines over the per-child
// cap counted in one closing line.
func TestForwarderLines(t *testing.T) {
	long := strings.Repeat("x", forwardLineMax+10)
	many := strings.Repeat("l\n", forwardLines+3)
	tests := []struct {
		name   string
		chunks []string // stdout chunks
		want   []string // "line" values in order
		hidden int
	}{
		{"one line", []string{"hello world\n"}, []string{"hello world"}, 0},
		{"split across reads", []string{"hel", "lo\nwor", "ld\n"}, []string{"hello", "world"}, 0},
		{"unterminated last line", []string{"a\nb"}, []string{"a", "b"}, 0},
		{"empty line", []string{"\n"}, []string{""}, 0},
		{"control bytes", []string{"\x1b[31mred\tx\n"}, []string{`\x1b[31mred\tx`}, 0},
		{"long line", []string{long + "\n"}, []string{strings.Repeat("x", forwardLineMax) + "…", "xxxxxxxxxx"}, 0},
		{"over the cap", []string{many}, nil, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			f := &forwarder{log: slog.New(slog.NewJSONHandler(&buf, nil))}
			c := &child{pid: 77, agentPid: 42, fwd: f}
			for _, ch := range tc.chunks {
				f.feed(c, 0, []byte(ch))
			}
			f.flush(c)
			var lines []string
			hidden := 0
			for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("%q: %v", l, err)
				}
				if m["child"] != float64(77) || m["pid"] != float64(42) {
					t.Fatalf("line does not name child and agent: %v", m)
				}
				if h, ok := m["hidden"]; ok {
					hidden = int(h.(float64))
					continue
				}
				if m["stream"] != "stdout" {
					t.Fatalf("stream %v", m["stream"])
				}
				lines = append(lines, m["line"].(string))
			}
			if tc.want == nil {
				if len(lines) != forwardLines {
					t.Fatalf("%d lines shown, want %d", len(lines), forwardLines)
				}
			} else if strings.Join(lines, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("lines %q, want %q", lines, tc.want)
			}
			if hidden != tc.hidden {
				t.Fatalf("hidden %d, want %d", hidden, tc.hidden)
			}
		})
	}
}
