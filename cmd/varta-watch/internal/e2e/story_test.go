package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
)

// TestDaemonLogTellsTheStory: the daemon's log has one line for the stall,
// one for the recovery spawn and one for its completion, each naming the
// agent's pid, and one line at shutdown naming the reason — in the text and
// the JSON log formats.
func TestDaemonLogTellsTheStory(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			dir := newDir(t)
			prog := filepath.Join(dir, "noisy-recovery")
			script := "#!/bin/sh\necho \"restarting $1\"\necho 'no unit found' >&2\nexit 1\n"
			if err := os.WriteFile(prog, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			d := startIn(t, dir, nil, "--threshold-ms", "300", "--log-format", format,
				"--recovery-exec", prog+" {pid}")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			_, pid := d.agent(ctx, "self", "1", 30*time.Second, nil)
			spid := strconv.Itoa(pid)
			testsupport.Eventually(t, 10*time.Second, "recovery completed line", func() bool {
				return strings.Contains(d.Stderr.String(), "recovery completed")
			})
			if code := d.Stop(syscall.SIGTERM); code != 0 {
				t.Fatalf("exit %d", code)
			}
			// Every line of the daemon's stderr is its own (the child's
			// output only inside "recovery child output" lines).
			for _, l := range strings.Split(strings.TrimSpace(d.Stderr.String()), "\n") {
				if !strings.HasPrefix(l, "varta-watch: ") && !strings.HasPrefix(l, "{") {
					t.Errorf("unprefixed line on the daemon's stderr: %q", l)
				}
			}
			lines := logLines(t, format, d.Stderr.String())
			want := []struct{ msg, attr, val string }{
				{"agent stalled", "pid", spid},
				{"recovery spawned", "pid", spid},
				{"recovery child output", "line", "restarting " + spid},
				{"recovery child output", "line", "no unit found"},
				{"recovery completed", "exit", "1"},
				{"shutting down", "reason", "terminated"},
			}
			for _, w := range want {
				found := false
				for _, l := range lines {
					if strings.HasPrefix(l["msg"], w.msg) && strings.Contains(l[w.attr], w.val) {
						found = true
					}
				}
				if !found {
					t.Errorf("no %q line with %s=%s in:\n%s", w.msg, w.attr, w.val, d.Stderr.String())
				}
			}
		})
	}
}

// logLines parses the daemon's stderr into message and attribute maps.
func logLines(t *testing.T, format, out string) []map[string]string {
	t.Helper()
	var lines []map[string]string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		m := map[string]string{}
		if format == "json" {
			var raw map[string]any
			if err := json.Unmarshal([]byte(line), &raw); err != nil {
				t.Fatalf("log line is not JSON: %q: %v", line, err)
			}
			for k, v := range raw {
				switch x := v.(type) {
				case string:
					m[k] = x
				default:
					b, _ := json.Marshal(x)
					m[k] = string(b)
				}
			}
		} else {
			// Every value with a space, a quote or a control byte is quoted:
			// a line that does not parse fails the test.
			_, msg, attrs, err := testsupport.ParseLogLine(line)
			if err != nil {
				t.Fatal(err)
			}
			m = attrs
			m["msg"] = msg
		}
		lines = append(lines, m)
	}
	return lines
}
