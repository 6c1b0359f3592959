package metrics

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/exporter-toolkit/web"

	"github.com/varta-go/varta/cmd/varta-watch/internal/stats"
)

// MetricsPath is the only path the endpoint serves.
const MetricsPath = "/metrics"

// HTTP limits of the endpoint.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	// writeTimeout bounds gathering plus writing one response; a scrape of
	// a 65,536-agent table with per-pid series takes well under a second.
	writeTimeout   = 30 * time.Second
	idleTimeout    = 60 * time.Second
	maxHeaderBytes = 8 << 10
	// maxInFlight bounds concurrent scrapes (an HA pair plus a human);
	// more get 503.
	maxInFlight = 4
	// shutdownGrace is how long Close waits for in-flight scrapes.
	shutdownGrace = 5 * time.Second
)

// ServerOptions configures the metrics endpoint.
type ServerOptions struct {
	// Addr is HOST:PORT to listen on; port 0 picks a free port.
	Addr string
	// TokenFile holds the bearer token: 64 hex digits, secret-file rules.
	// It may be empty only when WebConfigFile authenticates every client
	// (basic_auth_users, or client_auth_type RequireAndVerifyClientCert),
	// and must be empty when WebConfigFile has basic_auth_users (both use
	// the Authorization header).
	TokenFile string
	// WebConfigFile is an exporter-toolkit web configuration file
	// (--web-config-file, as in node_exporter): TLS, client certificates,
	// basic auth. "" serves plain HTTP.
	WebConfigFile string
	// RateLimitPerSec is the per-client request rate; 0 turns the limiter
	// off.
	RateLimitPerSec float64
	// RateLimitBurst is the per-client bucket size; 0 turns the limiter
	// off.
	RateLimitBurst int
	// MaxClients bounds the limiter's client table; 0 means
	// DefaultMaxClients.
	MaxClients int
	// MaxConnections bounds the open connections (--prom-max-connections);
	// 0 means DefaultMaxConnections. At the limit the longest-idle
	// connection is closed to make room; when every connection is serving
	// a request, the new one is closed unserved.
	MaxConnections int
	// Logf receives warnings and errors; nil discards them.
	Logf func(format string, args ...any)
}

// Server is the authenticated metrics endpoint. NewServer binds the
// listener; Serve serves until Close.
type Server struct {
	ln      net.Listener
	conns   *connLimiter
	srv     *http.Server
	token   []byte
	c       *stats.Counters
	limiter *ipLimiter // nil when rate limiting is off
	metrics http.Handler
	logf    func(format string, args ...any)

	webConfig string // "" = plain HTTP, no toolkit layer

	closeOnce sync.Once
	closeErr  error
}

// NewServer validates opts, loads the token, binds opts.Addr and returns a
// Server that is not serving yet. A bind on anything but a loopback address
// logs a warning. Authentication failures and refused requests are counted
// in c.
func NewServer(opts ServerOptions, reg *Registry, c *stats.Counters) (*Server, error) {
	if reg == nil || c == nil {
		return nil, errors.New("metrics server: registry and counters are required")
	}
	if opts.Addr == "" {
		return nil, errors.New("metrics server: listen address is empty")
	}
	if math.IsNaN(opts.RateLimitPerSec) || math.IsInf(opts.RateLimitPerSec, 0) || opts.RateLimitPerSec < 0 {
		return nil, fmt.Errorf("metrics server: rate limit %v per second: must be a finite number >= 0", opts.RateLimitPerSec)
	}
	if opts.RateLimitBurst < 0 {
		return nil, fmt.Errorf("metrics server: rate limit burst %d: must be >= 0", opts.RateLimitBurst)
	}
	if opts.MaxClients < 0 {
		return nil, fmt.Errorf("metrics server: client table size %d: must be >= 0", opts.MaxClients)
	}
	if opts.MaxConnections < 0 {
		return nil, fmt.Errorf("metrics server: connection limit %d: must be >= 0", opts.MaxConnections)
	}
	maxConns := opts.MaxConnections
	if maxConns == 0 {
		maxConns = DefaultMaxConnections
	}
	var wc webConfigInfo
	if opts.WebConfigFile != "" {
		var err error
		if wc, err = loadWebConfig(opts.WebConfigFile); err != nil {
			return nil, fmt.Errorf("metrics server: %w", err)
		}
	}
	var token []byte
	switch {
	case opts.TokenFile == "" && !wc.authenticates():
		return nil, errors.New("metrics server: a bearer token file is required unless the web config file authenticates clients (basic_auth_users, or client_auth_type RequireAndVerifyClientCert)")
	case opts.TokenFile != "" && wc.basicAuth:
		return nil, fmt.Errorf("metrics server: web config file %q has basic_auth_users and a bearer token file is given: both use the Authorization header, choose one", opts.WebConfigFile)
	case opts.TokenFile != "":
		var err error
		if token, err = LoadToken(opts.TokenFile); err != nil {
			return nil, err
		}
	}
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	s := &Server{
		token:     token,
		c:         c,
		logf:      logf,
		webConfig: opts.WebConfigFile,
	}
	if opts.RateLimitPerSec > 0 && opts.RateLimitBurst > 0 {
		maxClients := opts.MaxClients
		if maxClients == 0 {
			maxClients = DefaultMaxClients
		}
		s.limiter = newIPLimiter(opts.RateLimitPerSec, opts.RateLimitBurst, maxClients)
	}
	errLog := log.New(newScrapeErrorFilter(logfWriter(logf)), "metrics endpoint: ", 0)
	// One inconsistent series (for example a pid listed twice during a
	// concurrent table change) must not blank out the whole scrape: the
	// handler logs, counts and goes on, as promhttp's ContinueOnError.
	s.metrics = newScrapeHandler(reg, errLog)
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          errLog,
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("metrics server: listen on %q: %w", opts.Addr, err)
	}
	s.conns = newConnLimiter(ln, maxConns, c)
	s.ln = s.conns
	s.srv.ConnState = s.conns.connState
	if ta, ok := ln.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
		logf("metrics endpoint listens on %s, which is not a loopback address; anyone who can reach it may try tokens (bind to 127.0.0.1 or firewall it)", ln.Addr())
	}
	return s, nil
}

// Addr returns the bound address (useful with port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts connections until Close and then returns nil; any other
// return is an accept failure. Call it at most once, typically in its own
// goroutine.
func (s *Server) Serve() error {
	var err error
	if s.webConfig == "" {
		err = s.srv.Serve(s.ln)
	} else {
		// The toolkit wraps the handler with its basic auth (the file is
		// re-read per request, as in node_exporter) and serves TLS when
		// the file configures it (certificates re-read per connection).
		no := false
		addrs := []string{s.ln.Addr().String()}
		logger := slog.New(slog.NewTextHandler(logfWriter(s.logf), &slog.HandlerOptions{Level: slog.LevelWarn}))
		err = web.Serve(s.ln, s.srv, &web.FlagConfig{WebListenAddresses: &addrs, WebSystemdSocket: &no, WebConfigFile: &s.webConfig}, logger)
	}
	if !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics server on %s: %w", s.ln.Addr(), err)
	}
	return nil
}

// Close stops accepting, lets in-flight scrapes finish for a few seconds,
// then closes every connection. Serve returns once Close has begun; no
// goroutine of the server is left when Close returns. Close is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		err := s.srv.Shutdown(ctx)
		if err != nil {
			err = errors.Join(err, s.srv.Close())
		}
		// Shutdown closes the listener only if Serve ran.
		if lerr := s.ln.Close(); lerr != nil && !errors.Is(lerr, net.ErrClosed) {
			err = errors.Join(err, lerr)
		}
		if err != nil {
			s.closeErr = fmt.Errorf("metrics server: close: %w", err)
		}
	})
	return s.closeErr
}

// ServeHTTP checks the bearer token first. A request with the right token
// is never charged to the per-client rate limiter, so no number of other
// clients can get it refused for table capacity; it gets 404 for an unknown
// path, 405 for a method other than GET, and otherwise the registry.
// Every other request pays the per-client rate limit (429/503), so tokens
// cannot be tried faster than the limit, then gets 404 for an unknown path
// (which reveals only that the endpoint exists) or 401. Every refused
// request is answered with "Connection: close", so a refused client holds
// no idle connection.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		w.Header().Set("Connection", "close")
		if s.limiter != nil {
			if ok, reason := s.limiter.allow(clientKey(r.RemoteAddr), time.Now()); !ok {
				s.c.PromConnectionsDropped[reason].Add(1)
				w.Header().Set("Retry-After", "1")
				if reason == stats.PromDropIPTableFull {
					http.Error(w, "too many clients", http.StatusServiceUnavailable)
				} else {
					http.Error(w, "rate limit exceeded", http.StatusTooManyRequests)
				}
				return
			}
		}
		if r.URL.Path != MetricsPath {
			http.NotFound(w, r)
			return
		}
		s.c.PromAuthFailures.Add(1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="varta"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if r.URL.Path != MetricsPath {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s.metrics.ServeHTTP(w, r)
}

// authorized reports whether r carries exactly one Authorization header of
// the form "Bearer <token>" (scheme case-insensitive) with the right token.
// The comparison is constant-time; only the token's length (always 64)
// can be learned from timing.
func (s *Server) authorized(r *http.Request) bool {
	if s.token == nil {
		// No bearer token: the web config authenticated the client
		// (basic auth before this handler, or a verified certificate).
		return true
	}
	vals := r.Header.Values("Authorization")
	if len(vals) != 1 {
		return false
	}
	scheme, cred, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(cred)), s.token) == 1
}

// logfWriter adapts a Logf function to an io.Writer for log.Logger.
type logfWriter func(format string, args ...any)

func (f logfWriter) Write(p []byte) (int, error) {
	f("%s", strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
