package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"
)

// ErrUnreachable: no daemon answers on the control socket.
var ErrUnreachable = errors.New("daemon not reachable")

// ErrRefused: the daemon answered with an error status.
var ErrRefused = errors.New("refused by the daemon")

// StatusError is a non-2xx reply.
type StatusError struct {
	Code int
	Msg  string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Code, http.StatusText(e.Code), e.Msg)
}

// Is makes a StatusError match ErrRefused.
func (e *StatusError) Is(target error) bool { return target == ErrRefused }

// Client talks to a daemon's control socket.
type Client struct {
	path string
	hc   *http.Client
}

// DefaultClientTimeout bounds one request of the client.
const DefaultClientTimeout = 10 * time.Second

// NewClient returns a client for the control socket at path.
func NewClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConns:      1,
		DisableKeepAlives: false,
	}
	return &Client{path: path, hc: &http.Client{Transport: tr, Timeout: DefaultClientTimeout}}
}

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://varta-watch"+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.dialError(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("control socket %s: read reply: %w", c.path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e ErrorReply
		msg := string(bytes.TrimSpace(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		var rr ReloadReply
		if path == PathReload && json.Unmarshal(b, &rr) == nil && rr.Error != "" {
			msg = rr.Error
		}
		return &StatusError{Code: resp.StatusCode, Msg: msg}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("control socket %s: bad reply: %w", c.path, err)
	}
	return nil
}

// dialError explains why the daemon could not be reached.
func (c *Client) dialError(err error) error {
	var hint string
	switch {
	case errors.Is(err, syscall.ENOENT):
		hint = "no such socket: is varta-watch running, and is this its --control-socket (or --socket)?"
	case errors.Is(err, syscall.ECONNREFUSED):
		hint = "connection refused: varta-watch is not running (stale socket file)"
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		hint = "permission denied: run as root or as the daemon's user, or ask for --control-allow-uid and a --control-socket-mode that lets you connect"
	default:
		hint = err.Error()
	}
	return fmt.Errorf("control socket %s: %s: %w", c.path, hint, ErrUnreachable)
}

// Agents lists the agents; service and state filter when not empty.
func (c *Client) Agents(ctx context.Context, service, state string) (AgentsReply, error) {
	q := url.Values{}
	if service != "" {
		q.Set("service", service)
	}
	if state != "" {
		q.Set("state", state)
	}
	p := PathAgents
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	var r AgentsReply
	err := c.do(ctx, http.MethodGet, p, nil, &r)
	return r, err
}

// Services lists the services.
func (c *Client) Services(ctx context.Context) (ServicesReply, error) {
	var r ServicesReply
	err := c.do(ctx, http.MethodGet, PathServices, nil, &r)
	return r, err
}

// Snoozes lists the snoozes in force.
func (c *Client) Snoozes(ctx context.Context) (SnoozesReply, error) {
	var r SnoozesReply
	err := c.do(ctx, http.MethodGet, PathSnoozes, nil, &r)
	return r, err
}

// Snooze snoozes target for a duration ("30m" or "forever").
func (c *Client) Snooze(ctx context.Context, req SnoozeRequest) (Snooze, error) {
	var r Snooze
	err := c.do(ctx, http.MethodPost, PathSnooze, req, &r)
	return r, err
}

// Resume ends the snooze of target.
func (c *Client) Resume(ctx context.Context, req ResumeRequest) (ResumeReply, error) {
	var r ResumeReply
	err := c.do(ctx, http.MethodPost, PathResume, req, &r)
	return r, err
}

// Reload asks the daemon to reload (as SIGHUP does).
func (c *Client) Reload(ctx context.Context) (ReloadReply, error) {
	var r ReloadReply
	err := c.do(ctx, http.MethodPost, PathReload, struct{}{}, &r)
	return r, err
}
