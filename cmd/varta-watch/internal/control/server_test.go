package control

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/snooze"
	"github.com/varta-go/varta/pkg/audit"
)

// helperEnv makes the test binary act as a control client (see TestMain).
const helperEnv = "VARTA_CONTROL_TEST_CLIENT"

func TestMain(m *testing.M) {
	if path := os.Getenv(helperEnv); path != "" {
		c := NewClient(path)
		_, err := c.Agents(context.Background(), "", "")
		var se *StatusError
		switch {
		case err == nil:
			fmt.Println("200")
		case errors.As(err, &se):
			fmt.Println(se.Code)
		default:
			fmt.Println("error:", err)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type recorder struct {
	mu   sync.Mutex
	recs []audit.ControlRecord
}

func (r *recorder) add(c audit.ControlRecord) { r.mu.Lock(); r.recs = append(r.recs, c); r.mu.Unlock() }
func (r *recorder) all() []audit.ControlRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]audit.ControlRecord(nil), r.recs...)
}

var testNow = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func fleet() []Agent {
	return []Agent{
		{Pid: 30, Service: "web", Unit: "-", State: StateStalled, LastBeatAgeMs: 4000, Beats: 10, Stalls: 1, Origin: "kernel"},
		{Pid: 10, Service: "web", Unit: "-", State: StateOK, LastBeatAgeMs: 100, Beats: 50, Origin: "kernel"},
		{Pid: 20, Service: "db", Unit: "-", State: StateDegraded, LastBeatAgeMs: 200, Beats: 5, Origin: "kernel"},
		{Pid: 40, Service: "pid:40", Unit: "-", State: StateStalled, LastBeatAgeMs: 9000, Beats: 3, Stalls: 2, Recoveries: 1, Origin: "udp"},
	}
}

type testServer struct {
	*Server
	dir    string
	client *Client
	audit  *recorder
	store  *snooze.Store
	reload func(context.Context) error
}

func startServer(t *testing.T, mod func(*Options)) *testServer {
	t.Helper()
	dir := t.TempDir()
	store, _, err := snooze.Open(filepath.Join(dir, snooze.FileName), func() time.Time { return testNow })
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{dir: dir, audit: &recorder{}, store: store}
	o := Options{
		Path:    filepath.Join(dir, "control.sock"),
		Agents:  fleet,
		Snoozes: store,
		Audit:   ts.audit.add,
		Now:     func() time.Time { return testNow },
		Reload:  func(ctx context.Context) error { return ts.reload(ctx) },
	}
	ts.reload = func(context.Context) error { return nil }
	if mod != nil {
		mod(&o)
	}
	s, err := Listen(o)
	if err != nil {
		t.Fatal(err)
	}
	ts.Server = s
	ts.client = NewClient(o.Path)
	t.Cleanup(func() {
		ts.client.Close()
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return ts
}

func pids(agents []Agent) string {
	var b strings.Builder
	for _, a := range agents {
		fmt.Fprintf(&b, "%d:%s ", a.Pid, a.State)
	}
	return strings.TrimSpace(b.String())
}

func TestAgentsAndFilters(t *testing.T) {
	ts := startServer(t, nil)
	ctx := context.Background()
	tests := []struct {
		service, state, want string
	}{
		{"", "", "10:ok 20:degraded 30:stalled 40:stalled"},
		{"web", "", "10:ok 30:stalled"},
		{"", "stalled", "30:stalled 40:stalled"},
		{"db", "stalled", ""},
		{"nope", "", ""},
	}
	for _, tc := range tests {
		r, err := ts.client.Agents(ctx, tc.service, tc.state)
		if err != nil {
			t.Fatal(err)
		}
		if got := pids(r.Agents); got != tc.want {
			t.Errorf("service=%q state=%q: %s, want %s", tc.service, tc.state, got, tc.want)
		}
		if !r.At.Equal(testNow) {
			t.Errorf("At %v", r.At)
		}
	}
	_, err := ts.client.Agents(ctx, "", "sleeping")
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusBadRequest || !strings.Contains(se.Msg, `"sleeping"`) {
		t.Fatalf("bad state filter: %v", err)
	}
}

func TestSnoozeResumeReload(t *testing.T) {
	ts := startServer(t, nil)
	ctx := context.Background()
	s, err := ts.client.Snooze(ctx, SnoozeRequest{Target: "web", For: "30m", Reason: "deploy 4711"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Target != "web" || !s.Until.Equal(testNow.Add(30*time.Minute)) || s.UID != uint32(os.Geteuid()) {
		t.Fatalf("snooze reply %+v", s)
	}
	if _, err := ts.client.Snooze(ctx, SnoozeRequest{Target: "pid:40", For: "forever", Reason: "disk"}); err != nil {
		t.Fatal(err)
	}
	r, err := ts.client.Agents(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := pids(r.Agents); got != "10:ok 20:degraded 30:snoozed 40:snoozed" {
		t.Fatalf("after snooze: %s", got)
	}
	if r.Agents[0].Snoozed == nil || r.Agents[0].Snoozed.Target != "web" || r.Agents[1].Snoozed != nil {
		t.Fatalf("snoozed refs: %+v", r.Agents)
	}
	sv, err := ts.client.Services(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range sv.Services {
		names = append(names, fmt.Sprintf("%s%v%v", s.Name, s.Agents, s.Snoozed != nil))
	}
	if got := strings.Join(names, " "); got != "dbmap[degraded:1]false pid:40map[snoozed:1]true webmap[ok:1 snoozed:1]true" {
		t.Fatalf("services: %s", got)
	}
	// The state file survives a restart of the store.
	again, info, err := snooze.Open(ts.store.Path(), func() time.Time { return testNow })
	if err != nil || info.Loaded != 2 || len(again.List()) != 2 {
		t.Fatalf("reopened store: %+v %v", info, err)
	}

	if _, err := ts.client.Resume(ctx, ResumeRequest{Target: "web", Reason: "deploy done"}); err != nil {
		t.Fatal(err)
	}
	_, err = ts.client.Resume(ctx, ResumeRequest{Target: "web"})
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusNotFound {
		t.Fatalf("second resume: %v", err)
	}
	if rr, err := ts.client.Reload(ctx); err != nil || rr.Result != "ok" {
		t.Fatalf("reload: %+v %v", rr, err)
	}
	ts.reload = func(context.Context) error { return errors.New("policy.yml:3: unknown key \"treshold\"") }
	_, err = ts.client.Reload(ctx)
	if !errors.As(err, &se) || se.Code != http.StatusUnprocessableEntity || !strings.Contains(se.Msg, "treshold") {
		t.Fatalf("failed reload: %v", err)
	}

	uid := uint32(os.Geteuid())
	want := []audit.ControlRecord{
		{UID: uid, Action: "snooze", Target: "web", UntilMs: testNow.Add(30 * time.Minute).UnixMilli(), Reason: "deploy 4711"},
		{UID: uid, Action: "snooze", Target: "pid:40", Forever: true, Reason: "disk"},
		{UID: uid, Action: "resume", Target: "web", Reason: "deploy done"},
		{UID: uid, Action: "reload", Reason: "ok"},
		{UID: uid, Action: "reload", Reason: "error: policy.yml:3: unknown key \"treshold\""},
	}
	got := ts.audit.all()
	if len(got) != len(want) {
		t.Fatalf("audit records %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("audit record %d: %+v, want %+v", i, got[i], want[i])
		}
		if err := audit.Validate(audit.Record{Kind: audit.KindControl, Control: got[i]}); err != nil {
			t.Errorf("audit record %d: %v", i, err)
		}
	}
}

// raw sends one raw HTTP request and returns the status code and body.
func raw(t *testing.T, path, method, target, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://x"+target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return net.Dial("unix", path)
	}}}
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestBadRequests(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.MaxBodyBytes = 256 })
	tests := []struct {
		name, method, target, body string
		code                       int
		msg                        string
	}{
		{"bad target", "POST", PathSnooze, `{"target":"-rf","for":"1h","reason":"x"}`, 400, `-rf`},
		{"bad duration", "POST", PathSnooze, `{"target":"web","for":"1 hour","reason":"x"}`, 400, `1 hour`},
		{"no reason", "POST", PathSnooze, `{"target":"web","for":"1h"}`, 400, "reason"},
		{"control character in reason", "POST", PathSnooze, `{"target":"web","for":"1h","reason":"a\u001b[2Jb"}`, 400, "control character"},
		{"unknown field", "POST", PathSnooze, `{"target":"web","for":"1h","reason":"x","until":"never"}`, 400, "unknown field"},
		{"two objects", "POST", PathSnooze, `{"target":"web","for":"1h","reason":"x"}{}`, 400, "after the JSON object"},
		{"not JSON", "POST", PathResume, `target=web`, 400, "request body"},
		{"too large", "POST", PathSnooze, `{"target":"web","for":"1h","reason":"` + strings.Repeat("x", 300) + `"}`, 413, "over 256 bytes"},
		{"GET on a write endpoint", "GET", PathSnooze, ``, 405, ""},
		{"POST on a read endpoint", "POST", PathAgents, `{}`, 405, ""},
		{"unknown path", "GET", "/v1/nope", ``, 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := raw(t, ts.Path(), tc.method, tc.target, tc.body)
			if code != tc.code || !strings.Contains(body, tc.msg) {
				t.Fatalf("%d %q, want %d containing %q", code, body, tc.code, tc.msg)
			}
		})
	}
	if n := len(ts.store.List()); n != 0 {
		t.Fatalf("a bad request stored %d snooze(s)", n)
	}
	if n := len(ts.audit.all()); n != 0 {
		t.Fatalf("a bad request was audited: %+v", ts.audit.all())
	}
	counts := map[string]uint64{}
	for _, c := range ts.Requests() {
		counts[fmt.Sprintf("%s/%d", c.Endpoint, c.Code)] = c.Count
	}
	want := map[string]uint64{"snooze/400": 6, "resume/400": 1, "snooze/413": 1, "snooze/405": 1, "agents/405": 1, "other/404": 1}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("requests %s = %d, want %d (all: %v)", k, counts[k], v, counts)
		}
	}
}

func TestSocketFile(t *testing.T) {
	ts := startServer(t, nil)
	fi, err := os.Lstat(ts.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v", fi.Mode())
	}
	// A second server on a live socket is refused.
	_, err = Listen(Options{Path: ts.Path(), Snoozes: ts.store})
	if err == nil || !strings.Contains(err.Error(), "live") {
		t.Fatalf("second Listen: %v", err)
	}
	// A regular file is never replaced.
	file := filepath.Join(ts.dir, "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := Listen(Options{Path: file, Snoozes: ts.store}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen on a file: %v", err)
	}
	// A directory anyone may write to (not sticky) is refused.
	open := filepath.Join(ts.dir, "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	if _, err := Listen(Options{Path: filepath.Join(open, "c.sock"), Snoozes: ts.store}); err == nil || !strings.Contains(err.Error(), "group/other-writable") {
		t.Fatalf("Listen in a world-writable directory: %v", err)
	}
	// A stale socket (nobody listening) is replaced.
	stale := filepath.Join(ts.dir, "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	s2, err := Listen(Options{Path: stale, Snoozes: ts.store})
	if err != nil {
		t.Fatalf("Listen on a stale socket: %v", err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file left after Close: %v", err)
	}
	// The client explains an absent daemon.
	_, err = NewClient(stale).Agents(context.Background(), "", "")
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "is varta-watch running") {
		t.Fatalf("client error: %v", err)
	}
}

// TestConnectionLimit: above MaxConns a connection gets 503 at once and
// is counted; once one closes, a new one is served.
func TestConnectionLimit(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.MaxConns = 2 })
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("unix", ts.Path())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// Make sure both were accepted (each answers a request).
	for _, c := range held {
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", PathSnoozes)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("held connection: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	c, err := net.Dial("unix", ts.Path())
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third connection: %v %v", resp, err)
	}
	c.Close()
	if n := ts.RejectedConns(); n != 1 {
		t.Fatalf("rejected %d", n)
	}
	held[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, _ := rawTry(ts.Path())
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no slot freed after a close (last code %d)", code)
		}
		time.Sleep(10 * time.Millisecond)
	}
	held[1].Close()
}

func rawTry(path string) (int, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", PathSnoozes)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestSlowClientIsCut: a client that never finishes its request is
// disconnected after the request timeout and frees its slot.
func TestSlowClientIsCut(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.RequestTimeout = 200 * time.Millisecond; o.MaxConns = 1 })
	c, err := net.Dial("unix", ts.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST "+PathSnooze+" HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	b, _ := io.ReadAll(c) // returns when the server closes the connection
	if time.Since(start) > 5*time.Second {
		t.Fatalf("slow client held the connection for %v", time.Since(start))
	}
	_ = b
	deadline := time.Now().Add(5 * time.Second)
	for {
		if code, _ := rawTry(ts.Path()); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("slot not freed after the slow client was cut")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestForeignUID runs a client process as another uid: it is refused
// with 403 (counted) unless --control-allow-uid names it.
func TestForeignUID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client under another uid")
	}
	const nobody = 65534
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A directory the other uid can traverse, holding a copy of the test
	// binary it can execute and the socket it can connect to.
	dir, err := os.MkdirTemp("", "varta-control-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "client")
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(sock string) string {
		cmd := exec.Command(bin)
		cmd.Env = []string{helperEnv + "=" + sock}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("client as uid %d: %v: %s", nobody, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	for _, tc := range []struct {
		name  string
		allow []uint32
		mode  os.FileMode
		want  string
	}{
		{"socket mode keeps it out", nil, 0o600, "error:"},
		{"not allowed", nil, 0o666, "403"},
		{"allowed", []uint32{nobody}, 0o666, "200"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store, _, _ := snooze.Open("", nil)
			s, err := Listen(Options{Path: filepath.Join(dir, "c.sock"), Mode: tc.mode, AllowUIDs: tc.allow, Snoozes: store, Agents: fleet})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got := run(s.Path()); !strings.HasPrefix(got, tc.want) {
				t.Fatalf("client said %q, want %q", got, tc.want)
			}
			var forbidden uint64
			for _, c := range s.Requests() {
				if c.Code == http.StatusForbidden {
					forbidden += c.Count
				}
			}
			if want := map[string]uint64{"403": 1}[tc.want]; forbidden != want {
				t.Fatalf("403s counted %d, want %d", forbidden, want)
			}
		})
	}
}

// TestHeaderAndIdleBounds: request headers over the bound (plus the 4 KiB
// that net/http reads beyond it) get 431 from net/http, before any
// handler, and a kept-alive connection that sends nothing is closed after
// the idle timeout, freeing its slot.
func TestHeaderAndIdleBounds(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.IdleTimeout = 300 * time.Millisecond; o.MaxConns = 1 })
	for _, tc := range []struct {
		size int
		code int
	}{{4 << 10, 200}, {DefaultMaxHeaderBytes + 4096 + 1, http.StatusRequestHeaderFieldsTooLarge}} {
		c, err := net.Dial("unix", ts.Path())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\nConnection: close\r\n\r\n", PathSnoozes, strings.Repeat("a", tc.size))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != tc.code {
			t.Fatalf("%d bytes of headers: %v %v, want %d", tc.size, resp, err, tc.code)
		}
		resp.Body.Close()
		c.Close()
	}

	// A kept-alive connection (retried while the closed ones still hold
	// the only slot).
	var c net.Conn
	var r *bufio.Reader
	pollFor(t, func() bool {
		var err error
		if c, err = net.Dial("unix", ts.Path()); err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		r = bufio.NewReader(c)
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", PathSnoozes)
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			c.Close()
		}
		return resp.StatusCode == 200
	})
	defer c.Close()
	start := time.Now()
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: read %v, want EOF when the server closes it", err)
	}
	if el := time.Since(start); el < 200*time.Millisecond || el > 5*time.Second {
		t.Fatalf("idle connection closed after %v, want about 300 ms", el)
	}
	// The slot (MaxConns 1) is free again.
	pollFor(t, func() bool { code, _ := rawTry(ts.Path()); return code == 200 })
}

func pollFor(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no connection slot freed in 5 s")
		}
	}
}
