package faults

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Paths of the binaries TestMain builds.
var watchBin, beatBin, auditBin string

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == soakContArg {
		os.Exit(soakCont(os.Args[2:]))
	}
	if spec := os.Getenv(roleEnv); spec != "" {
		os.Exit(runRole(spec)) // a helper process (roles_test.go)
	}
	dir, err := os.MkdirTemp("", "varta-faults-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Chmod(dir, 0o755)
	watchBin = filepath.Join(dir, "varta-watch")
	beatBin = filepath.Join(dir, "varta-beat")
	auditBin = filepath.Join(dir, "varta-audit")
	// Built without the race detector: the cases measure resources and
	// throughput of the daemon as it ships.
	for _, b := range [][]string{
		{"build", "-o", watchBin, "github.com/varta-go/varta/cmd/varta-watch"},
		{"build", "-o", beatBin, "github.com/varta-go/varta/cmd/varta-beat"},
		{"build", "-o", auditBin, "github.com/varta-go/varta/cmd/varta-audit"},
	} {
		build := exec.Command("go", b...)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "go", strings.Join(b, " "), err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuf is a bytes.Buffer safe for concurrent Write and String.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// watchProc is a running varta-watch.
type watchProc struct {
	t              testing.TB
	dir, socket    string
	cmd            *exec.Cmd
	stdout, stderr *syncBuf
	done           chan struct{}
	exitErr        error
}

// tempDir returns a fresh world-traversable directory removed at cleanup.
func tempDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "varta-faults-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(d, 0o755)
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// startWatch runs varta-watch with its socket and events file in dir plus
// args, and waits until the socket exists. Cleanup kills it.
func startWatch(t testing.TB, dir string, args ...string) *watchProc {
	t.Helper()
	w := &watchProc{t: t, dir: dir, socket: filepath.Join(dir, "varta.sock"),
		stdout: &syncBuf{}, stderr: &syncBuf{}, done: make(chan struct{})}
	all := append([]string{"--socket", w.socket, "--export-file", filepath.Join(dir, "events.tsv")}, args...)
	w.cmd = exec.Command(watchBin, all...)
	w.cmd.Stdout, w.cmd.Stderr = w.stdout, w.stderr
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { w.exitErr = w.cmd.Wait(); close(w.done) }()
	t.Cleanup(func() {
		w.cmd.Process.Signal(syscall.SIGKILL)
		<-w.done
		if t.Failed() {
			t.Logf("varta-watch stderr:\n%s", w.stderr.String())
		}
	})
	waitUntil(t, 20*time.Second, "socket "+w.socket, func() bool {
		select {
		case <-w.done:
			t.Fatalf("varta-watch exited early: %v\n%s", w.exitErr, w.stderr.String())
		default:
		}
		_, err := os.Stat(w.socket)
		return err == nil
	})
	return w
}

// stop sends sig and returns the exit code.
func (w *watchProc) stop(sig syscall.Signal) int {
	w.t.Helper()
	w.cmd.Process.Signal(sig)
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
		w.t.Fatal("varta-watch did not exit")
	}
	return w.cmd.ProcessState.ExitCode()
}

// promAddr waits for the metrics address varta-watch prints on stdout.
func (w *watchProc) promAddr() string {
	w.t.Helper()
	var addr string
	waitUntil(w.t, 10*time.Second, "metrics address on stdout", func() bool {
		line, _, ok := strings.Cut(w.stdout.String(), "\n")
		addr = strings.TrimSpace(line)
		return ok
	})
	return addr
}

// waitUntil polls cond every 10 ms until it holds or within passes.
func waitUntil(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// procFDs returns the number of open descriptors of pid.
func procFDs(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(ents)
}

// procRSSKiB returns VmRSS of pid in KiB.
func procRSSKiB(pid int) int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return -1
}

// metricsClient scrapes a metrics endpoint with a bearer token.
type metricsClient struct {
	url, token string
	http       *http.Client
}

func newMetricsClient(addr, token string) *metricsClient {
	return &metricsClient{url: "http://" + addr + "/metrics", token: token,
		http: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
}

// scrape returns the status code (or -1 on a transport error) and the
// exposition as "series value" pairs.
func (c *metricsClient) scrape() (int, map[string]float64) {
	req, _ := http.NewRequest("GET", c.url, nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return -1, nil
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return resp.StatusCode, m
}
