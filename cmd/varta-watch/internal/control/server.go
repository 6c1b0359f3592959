package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/cmd/varta-watch/internal/listener"
	"github.com/varta-go/varta/cmd/varta-watch/internal/snooze"
	"github.com/varta-go/varta/pkg/audit"
)

// Defaults of the server's bounds.
const (
	DefaultMaxConns       = 128
	DefaultMaxBodyBytes   = 16 << 10
	DefaultMaxHeaderBytes = 8 << 10
	// DefaultRequestTimeout bounds reading a request, handling it and
	// writing the reply.
	DefaultRequestTimeout = 5 * time.Second
	// DefaultIdleTimeout closes a kept-alive connection that sends nothing.
	DefaultIdleTimeout = 60 * time.Second
)

// Options configure a Server.
type Options struct {
	// Path of the Unix stream socket; its directory follows the rules of
	// the beat socket's (listener.CheckSocketDir).
	Path string
	// Mode of the socket file (default 0600).
	Mode os.FileMode
	// AllowUIDs may call the server besides root and the daemon's euid.
	AllowUIDs []uint32
	// Bounds; zero values take the defaults above.
	MaxConns       int
	MaxBodyBytes   int64
	MaxHeaderBytes int
	RequestTimeout time.Duration
	IdleTimeout    time.Duration

	// Agents returns a snapshot of the tracked agents with Service, Unit
	// and State filled (State before snoozes are applied: the server turns
	// a stalled agent under a snooze into snoozed). It is called from
	// request goroutines and must never hold a lock ingest needs for long.
	Agents func() []Agent
	// ServiceDetails, if set, adds what the restart budget knows about a
	// service (last recovery, backoff, gave up).
	ServiceDetails func(name string) (lastRecovery, backoffUntil, gaveUpUntil time.Time)
	// Snoozes is where snooze and resume act; required.
	Snoozes *snooze.Store
	// Reload does what SIGHUP does and returns its error; nil means the
	// daemon has nothing to reload beyond the events file.
	Reload func(ctx context.Context) error
	// Audit, if set, records an operator action (a control record).
	Audit func(audit.ControlRecord)
	// OnSnoozeChange, if set, is called after a snooze or resume changed
	// the store (e.g. to refresh metrics).
	OnSnoozeChange func()
	// Now is the wall clock (nil: time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// Server is a running control server.
type Server struct {
	opts   Options
	ln     *net.UnixListener
	http   *http.Server
	allow  map[uint32]bool
	sem    chan struct{}
	dev    uint64
	ino    uint64
	ctime  unix.Timespec
	done   chan struct{}
	stats  requestStats
	closed atomic.Bool

	rejectedConns atomic.Uint64
}

// Endpoint labels of varta_control_requests_total.
var endpoints = map[string]string{
	PathAgents: "agents", PathServices: "services", PathSnoozes: "snoozes",
	PathSnooze: "snooze", PathResume: "resume", PathReload: "reload",
}

// RequestCount is one series of varta_control_requests_total.
type RequestCount struct {
	Endpoint string
	Code     int
	Count    uint64
}

type requestStats struct {
	mu sync.Mutex
	m  map[[2]string]*atomic.Uint64
}

func (s *requestStats) add(endpoint string, code int) {
	k := [2]string{endpoint, strconv.Itoa(code)}
	s.mu.Lock()
	c := s.m[k]
	if c == nil {
		if s.m == nil {
			s.m = map[[2]string]*atomic.Uint64{}
		}
		c = new(atomic.Uint64)
		s.m[k] = c
	}
	s.mu.Unlock()
	c.Add(1)
}

// Listen binds the socket and starts serving. A stale socket file (nobody
// listening) is replaced; a live one is an error.
func Listen(o Options) (*Server, error) {
	if o.Snoozes == nil {
		return nil, errors.New("control: no snooze store")
	}
	if o.Mode == 0 {
		o.Mode = 0o600
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Agents == nil {
		o.Agents = func() []Agent { return nil }
	}
	s := &Server{opts: o, allow: map[uint32]bool{0: true, uint32(os.Geteuid()): true},
		sem: make(chan struct{}, o.MaxConns), done: make(chan struct{})}
	for _, u := range o.AllowUIDs {
		s.allow[u] = true
	}
	if err := s.bind(); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathAgents, s.agents)
	mux.HandleFunc("GET "+PathServices, s.services)
	mux.HandleFunc("GET "+PathSnoozes, s.snoozes)
	mux.HandleFunc("POST "+PathSnooze, s.snooze)
	mux.HandleFunc("POST "+PathResume, s.resume)
	mux.HandleFunc("POST "+PathReload, s.reload)
	s.http = &http.Server{
		Handler:           s.authorize(mux),
		ReadHeaderTimeout: o.RequestTimeout,
		ReadTimeout:       o.RequestTimeout,
		WriteTimeout:      o.RequestTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
		ConnContext:       connContext,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug),
	}
	go func() {
		defer close(s.done)
		if err := s.http.Serve(&limitListener{UnixListener: s.ln, s: s}); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.Logger.Warn("control socket stopped serving", "path", o.Path, "err", err)
		}
	}()
	return s, nil
}

func (s *Server) bind() error {
	path := s.opts.Path
	if err := listener.CheckSocketDir(path); err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return fmt.Errorf("control socket path %q exists and is not a socket", path)
		}
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return fmt.Errorf("control socket %q is live: another observer is running", path)
		}
		if !errors.Is(err, unix.ECONNREFUSED) {
			return fmt.Errorf("probe existing control socket %q: %w", path, err)
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("remove stale control socket %q: %w", path, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("control socket path %q: %w", path, err)
	}
	old := unix.Umask(int(0o777 &^ s.opts.Mode.Perm()))
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	unix.Umask(old)
	if err != nil {
		return fmt.Errorf("bind control socket %q: %w", path, err)
	}
	ln.SetUnlinkOnClose(false)
	fail := func(err error) error {
		ln.Close()
		os.Remove(path)
		return err
	}
	if err := os.Chmod(path, s.opts.Mode.Perm()); err != nil {
		return fail(fmt.Errorf("chmod control socket %q: %w", path, err))
	}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return fail(fmt.Errorf("stat control socket %q: %w", path, err))
	}
	s.dev, s.ino, s.ctime = uint64(st.Dev), uint64(st.Ino), st.Ctim
	s.ln = ln
	return nil
}

// Path returns the socket path.
func (s *Server) Path() string { return s.opts.Path }

// Requests returns the request counts by endpoint and status code, sorted.
func (s *Server) Requests() []RequestCount {
	s.stats.mu.Lock()
	out := make([]RequestCount, 0, len(s.stats.m))
	for k, c := range s.stats.m {
		code, _ := strconv.Atoi(k[1])
		out = append(out, RequestCount{Endpoint: k[0], Code: code, Count: c.Load()})
	}
	s.stats.mu.Unlock()
	slices.SortFunc(out, func(a, b RequestCount) int {
		if c := strings.Compare(a.Endpoint, b.Endpoint); c != 0 {
			return c
		}
		return a.Code - b.Code
	})
	return out
}

// RejectedConns counts connections closed at once because MaxConns were
// open.
func (s *Server) RejectedConns() uint64 { return s.rejectedConns.Load() }

// Close stops accepting, closes every connection (in-flight requests get
// up to a second to finish) and removes the socket file if it is still
// the one bound.
func (s *Server) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	err := s.http.Shutdown(ctx)
	cancel()
	if err != nil {
		err = s.http.Close()
	}
	<-s.done
	var st unix.Stat_t
	if unix.Lstat(s.opts.Path, &st) == nil && uint64(st.Dev) == s.dev && uint64(st.Ino) == s.ino && st.Ctim == s.ctime {
		if rerr := os.Remove(s.opts.Path); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

// limitListener bounds the open connections: above MaxConns a new
// connection gets a 503 and is closed at once (counted), so that Accept
// never stalls and the backlog never fills with waiting clients.
type limitListener struct {
	*net.UnixListener
	s *Server
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.UnixListener.AcceptUnix()
		if err != nil {
			return nil, err
		}
		select {
		case l.s.sem <- struct{}{}:
			return &limitedConn{UnixConn: c, release: func() { <-l.s.sem }}, nil
		default:
			l.s.rejectedConns.Add(1)
			c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			c.Write(tooBusy)
			c.Close()
		}
	}
}

var tooBusy = func() []byte {
	body := `{"error":"too many control connections open"}` + "\n"
	return []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

type limitedConn struct {
	*net.UnixConn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.UnixConn.Close()
	c.once.Do(c.release)
	return err
}

type ctxKey struct{}

// peer is what SO_PEERCRED said about the connection.
type peer struct {
	uid, pid uint32
	ok       bool
}

// connContext reads the peer's credentials once per connection.
func connContext(ctx context.Context, c net.Conn) context.Context {
	p := peer{}
	if lc, ok := c.(*limitedConn); ok {
		if raw, err := lc.SyscallConn(); err == nil {
			raw.Control(func(fd uintptr) { p = peerCred(int(fd)) })
		}
	}
	return context.WithValue(ctx, ctxKey{}, p)
}

func peerOf(r *http.Request) peer {
	p, _ := r.Context().Value(ctxKey{}).(peer)
	return p
}

// statusWriter remembers the status code for the request counter.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// authorize checks the peer's uid, bounds the body and the handling time,
// and counts every request by endpoint and status code.
func (s *Server) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		endpoint, ok := endpoints[r.URL.Path]
		if !ok {
			endpoint = "other"
		}
		defer func() { s.stats.add(endpoint, sw.code) }()
		p := peerOf(r)
		if !p.ok || !s.allow[p.uid] {
			who := "unknown"
			if p.ok {
				who = "uid " + strconv.FormatUint(uint64(p.uid), 10)
			}
			s.opts.Logger.Warn("control request refused", "peer", who, "path", r.URL.Path)
			writeError(sw, http.StatusForbidden, who+" may not use the control socket (root, the daemon's uid and --control-allow-uid may)")
			return
		}
		r.Body = http.MaxBytesReader(sw, r.Body, s.opts.MaxBodyBytes)
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.RequestTimeout)
		defer cancel()
		next.ServeHTTP(sw, r.WithContext(ctx))
		if sw.code == 0 {
			sw.code = http.StatusOK
		}
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, ErrorReply{Error: msg})
}

// decode reads a JSON request body strictly (no unknown field, one
// object, within the size bound).
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("data after the JSON object")
	}
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", mb.Limit))
			return false
		}
		writeError(w, http.StatusBadRequest, "request body: "+err.Error())
		return false
	}
	return true
}

func ref(e snooze.Entry) *SnoozeRef {
	return &SnoozeRef{Target: e.Target, Until: e.Until, Forever: e.Forever, Reason: e.Reason}
}

func snoozeOf(e snooze.Entry) Snooze {
	return Snooze{Target: e.Target, Until: e.Until, Forever: e.Forever, Reason: e.Reason, UID: e.UID, Since: e.Since}
}

// snapshot returns the agents with snoozes applied.
func (s *Server) snapshot() []Agent {
	agents := s.opts.Agents()
	for i := range agents {
		a := &agents[i]
		if e, ok := s.opts.Snoozes.Match(a.Service, a.Pid); ok {
			a.Snoozed = ref(e)
			if a.State == StateStalled {
				a.State = StateSnoozed
			}
		}
	}
	return agents
}

func (s *Server) agents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	service, state := q.Get("service"), q.Get("state")
	if state != "" && !slices.Contains(States, state) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("state %q: want one of %s", state, strings.Join(States, ", ")))
		return
	}
	all := s.snapshot()
	out := all[:0]
	for _, a := range all {
		if (service == "" || a.Service == service) && (state == "" || a.State == state) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b Agent) int { return int(int64(a.Pid) - int64(b.Pid)) })
	writeJSON(w, http.StatusOK, AgentsReply{At: s.opts.Now().UTC(), Agents: out})
}

func (s *Server) services(w http.ResponseWriter, r *http.Request) {
	byName := map[string]*Service{}
	var names []string
	for _, a := range s.snapshot() {
		sv := byName[a.Service]
		if sv == nil {
			sv = &Service{Name: a.Service, Agents: map[string]int{}}
			byName[a.Service] = sv
			names = append(names, a.Service)
		}
		sv.Agents[a.State]++
	}
	// A snoozed service shows even when none of its agents is tracked.
	for _, e := range s.opts.Snoozes.List() {
		if t, err := snooze.ParseTarget(e.Target); err == nil && t.Service != "" && byName[e.Target] == nil {
			byName[e.Target] = &Service{Name: e.Target, Agents: map[string]int{}}
			names = append(names, e.Target)
		}
	}
	slices.Sort(names)
	out := make([]Service, 0, len(names))
	for _, n := range names {
		sv := byName[n]
		var pid uint32
		if t, err := snooze.ParseTarget(n); err == nil {
			pid = t.Pid // a service named pid:N is that one agent
		}
		if e, ok := s.opts.Snoozes.Match(n, pid); ok {
			sv.Snoozed = ref(e)
		}
		if s.opts.ServiceDetails != nil {
			sv.LastRecovery, sv.BackoffUntil, sv.GaveUpUntil = s.opts.ServiceDetails(n)
		}
		out = append(out, *sv)
	}
	writeJSON(w, http.StatusOK, ServicesReply{At: s.opts.Now().UTC(), Services: out})
}

func (s *Server) snoozes(w http.ResponseWriter, r *http.Request) {
	list := s.opts.Snoozes.List()
	out := make([]Snooze, 0, len(list))
	for _, e := range list {
		out = append(out, snoozeOf(e))
	}
	writeJSON(w, http.StatusOK, SnoozesReply{Snoozes: out})
}

func (s *Server) snooze(w http.ResponseWriter, r *http.Request) {
	var req SnoozeRequest
	if !decode(w, r, &req) {
		return
	}
	uid := peerOf(r).uid
	e, err := ParseSnoozeRequest(req, uid, s.opts.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	e, err = s.opts.Snoozes.Put(e)
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, snooze.ErrTooMany) {
			code = http.StatusConflict
		}
		writeError(w, code, err.Error())
		return
	}
	rec := audit.ControlRecord{UID: uid, Action: audit.ControlSnooze, Target: e.Target, Forever: e.Forever, Reason: e.Reason}
	if !e.Forever {
		rec.UntilMs = e.Until.UnixMilli()
	}
	s.record(rec)
	s.opts.Logger.Info("snoozed", "target", e.Target, "until", untilText(e), "reason", e.Reason, "uid", uid)
	if s.opts.OnSnoozeChange != nil {
		s.opts.OnSnoozeChange()
	}
	writeJSON(w, http.StatusOK, snoozeOf(e))
}

// ParseSnoozeRequest validates a snooze request from uid at now and turns
// it into the entry to store.
func ParseSnoozeRequest(req SnoozeRequest, uid uint32, now time.Time) (snooze.Entry, error) {
	t, err := snooze.ParseTarget(req.Target)
	if err != nil {
		return snooze.Entry{}, err
	}
	d, forever, err := snooze.ParseDuration(req.For)
	if err != nil {
		return snooze.Entry{}, err
	}
	if err := snooze.CheckReason(req.Reason, true); err != nil {
		return snooze.Entry{}, err
	}
	e := snooze.Entry{Target: t.String(), Forever: forever, Reason: req.Reason, UID: uid, Since: now}
	if !forever {
		e.Until = now.Add(d)
	}
	return e, nil
}

func untilText(e snooze.Entry) string {
	if e.Forever {
		return snooze.Forever
	}
	return e.Until.UTC().Format(time.RFC3339)
}

func (s *Server) resume(w http.ResponseWriter, r *http.Request) {
	var req ResumeRequest
	if !decode(w, r, &req) {
		return
	}
	t, err := snooze.ParseTarget(req.Target)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := snooze.CheckReason(req.Reason, false); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	e, ok, err := s.opts.Snoozes.Remove(t.String())
	switch {
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	case !ok:
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s is not snoozed", t))
		return
	}
	uid := peerOf(r).uid
	s.record(audit.ControlRecord{UID: uid, Action: audit.ControlResume, Target: e.Target, Reason: req.Reason})
	s.opts.Logger.Info("snooze ended by resume", "target", e.Target, "uid", uid)
	if s.opts.OnSnoozeChange != nil {
		s.opts.OnSnoozeChange()
	}
	writeJSON(w, http.StatusOK, ResumeReply{Resumed: snoozeOf(e)})
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	var err error
	if s.opts.Reload != nil {
		err = s.opts.Reload(r.Context())
	}
	uid := peerOf(r).uid
	result := "ok"
	if err != nil {
		result = "error: " + err.Error()
	}
	s.record(audit.ControlRecord{UID: uid, Action: audit.ControlReload, Reason: clipText(result, snooze.MaxReasonBytes)})
	if err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, ReloadReply{Result: "error", Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, ReloadReply{Result: "ok"})
}

func (s *Server) record(r audit.ControlRecord) {
	if s.opts.Audit != nil {
		s.opts.Audit(r)
	}
}

// clipText bounds s to n bytes without splitting a UTF-8 sequence.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
