package testsupport

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseExposition(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     map[string]float64
		err      string
	}{
		{"series and comments", "# HELP a x\n# TYPE a counter\na 1\n\nb{l=\"x y\"} 2.5\nc +Inf\n",
			map[string]float64{"a": 1, `b{l="x y"}`: 2.5, "c": posInf()}, ""},
		{"no value", "lonely\n", nil, `exposition line "lonely": no value`},
		{"bad value", "a one\n", nil, `exposition line "a one"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseExposition(strings.NewReader(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func posInf() float64 { var z float64; return 1 / z }

func TestReadEventsAndFilter(t *testing.T) {
	p := filepath.Join(t.TempDir(), "events.tsv")
	if got := ReadEvents(t, p); got != nil {
		t.Fatalf("missing file: %v, want nil", got)
	}
	lines := "100\tbeat\t42\t1\tok\t0\n200\tstall\t42\t1\tstall\t-\n300\tbeat\t43\t7\tdegraded\t5\n"
	if err := os.WriteFile(p, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	evs := ReadEvents(t, p)
	want := []Event{{100, "beat", "42", "1", "ok", "0"}, {200, "stall", "42", "1", "stall", "-"}, {300, "beat", "43", "7", "degraded", "5"}}
	if fmt.Sprint(evs) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", evs, want)
	}
	if got := Filter(evs, "beat", ""); len(got) != 2 || got[1].Pid != "43" {
		t.Fatalf("beats %v", got)
	}
	if got := Filter(evs, "beat", "42"); len(got) != 1 || got[0].NS != 100 {
		t.Fatalf("beats of 42: %v", got)
	}
}

// fatalRecorder is a testing.TB whose Fatal stops only the calling
// goroutine and records the message.
type fatalRecorder struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.msg = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fatalRecorder) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }

// failure runs fn with a fatalRecorder and returns the fatal message ("" if
// fn returned).
func failure(t *testing.T, fn func(tb testing.TB)) string {
	r := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() { defer close(done); fn(r) }()
	<-done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msg
}

func TestReadEventsRejectsBadLines(t *testing.T) {
	for name, line := range map[string]string{
		"five columns": "100\tbeat\t42\t1\tok\n",
		"bad ns":       "x\tbeat\t42\t1\tok\t0\n",
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "events.tsv")
			os.WriteFile(p, []byte(line), 0o600)
			if msg := failure(t, func(tb testing.TB) { ReadEvents(tb, p) }); !strings.Contains(msg, p) {
				t.Fatalf("fatal message %q does not name the file", msg)
			}
		})
	}
}

func TestSocketPath(t *testing.T) {
	if p := SocketPath(t, "/tmp/x", "varta.sock"); p != "/tmp/x/varta.sock" {
		t.Fatal(p)
	}
	long := "/tmp/" + strings.Repeat("d", MaxSocketPath)
	if msg := failure(t, func(tb testing.TB) { SocketPath(tb, long, "varta.sock") }); !strings.Contains(msg, "longer than the kernel's 107") {
		t.Fatalf("fatal message %q", msg)
	}
	if d := ShortDir(t); len(SocketPath(t, d, "varta.sock")) > MaxSocketPath {
		t.Fatalf("ShortDir %q is too long for a socket", d)
	}
}

func TestPollAndEventually(t *testing.T) {
	n := 0
	if !Poll(time.Second, func() bool { n++; return n == 3 }) || n != 3 {
		t.Fatalf("Poll stopped after %d checks", n)
	}
	if Poll(30*time.Millisecond, func() bool { return false }) {
		t.Fatal("Poll reported a condition that never held")
	}
	msg := failure(t, func(tb testing.TB) {
		Eventually(tb, 30*time.Millisecond, "the impossible", func() bool { return false })
	})
	if msg != "timed out after 30ms waiting for the impossible" {
		t.Fatalf("fatal message %q", msg)
	}
}

func TestParseLogLine(t *testing.T) {
	for _, tc := range []struct {
		name, in   string
		level, msg string
		attrs      map[string]string
		err        string
	}{
		{"plain", "varta-watch: observing socket=/run/v.sock threshold=1.5s",
			"info", "observing", map[string]string{"socket": "/run/v.sock", "threshold": "1.5s"}, ""},
		{"warn with quoted values", `varta-watch: warn: recovery refused pid=7 why="the process is gone (a crash)" comm="a\nb"`,
			"warn", "recovery refused", map[string]string{"pid": "7", "why": "the process is gone (a crash)", "comm": "a\nb"}, ""},
		{"message only", "varta-watch: error: bind failed", "error", "bind failed", map[string]string{}, ""},
		{"no prefix", "restarting 42", "", "", nil, "no \"varta-watch: \" prefix"},
		{"unquoted value with an equals sign", "varta-watch: x a=b=c", "", "", nil, "unquoted value of a"},
		{"bad quoting", `varta-watch: x a="b`, "", "", nil, "value of a"},
		{"attribute twice", "varta-watch: x a=1 a=2", "", "", nil, "attribute a twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			level, msg, attrs, err := ParseLogLine(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if level != tc.level || msg != tc.msg || fmt.Sprint(attrs) != fmt.Sprint(tc.attrs) {
				t.Fatalf("got %q %q %q, want %q %q %q", level, msg, attrs, tc.level, tc.msg, tc.attrs)
			}
		})
	}
}
