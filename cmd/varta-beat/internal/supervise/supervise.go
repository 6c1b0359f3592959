package supervise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/varta-go/varta/cmd/varta-beat/internal/beatloop"
	"github.com/varta-go/varta/pkg/agent"
	"github.com/varta-go/varta/pkg/vlp"
)

// Options configure Run.
type Options struct {
	// Argv is the command and its arguments (no shell).
	Argv []string
	// Interval between beats; must be positive.
	Interval time.Duration
	// Status and Payload of every beat.
	Status  vlp.Status
	Payload uint32
	// RequireOutputWithin, when positive, pauses the beats while the child
	// has written nothing to stdout or stderr for longer than this (the
	// child's output is then passed through a pipe instead of inherited).
	RequireOutputWithin time.Duration
	// Connect opens the agent. When it fails because no observer is
	// listening, the child still runs and Connect is retried every
	// interval; any other error aborts before the child starts.
	Connect func() (*agent.Agent, error)
	// Signals received by varta-beat are forwarded to the child.
	Signals <-chan os.Signal
	// Stdin, Stdout, Stderr of the child; Errs receives varta-beat's own
	// rate-limited messages, each starting with Prefix.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Errs           io.Writer
	Prefix         string
	// Verbose writes a line per beat to Errs.
	Verbose bool
}

// Result tells how the child ended.
type Result struct {
	// ExitCode to exit with: the child's exit code, or 128+signal when a
	// signal killed it.
	ExitCode int
}

// stampWriter passes output through and records when it last arrived.
type stampWriter struct {
	w     io.Writer
	start time.Time
	last  *atomic.Int64 // ns since start
}

func (s stampWriter) Write(p []byte) (int, error) {
	s.last.Store(int64(time.Since(s.start)))
	n, err := s.w.Write(p)
	if err != nil {
		// A broken pass-through must not block or kill the child.
		return len(p), nil
	}
	return n, nil
}

// Run runs the child to completion and returns its Result. The error is set
// only when the child could not be started (or the first connect failed for
// a reason other than an absent observer).
func Run(ctx context.Context, o Options) (Result, error) {
	if len(o.Argv) == 0 {
		return Result{}, errors.New("exec: no command given")
	}
	if o.Interval <= 0 {
		return Result{}, fmt.Errorf("exec: beat interval must be positive, got %v", o.Interval)
	}
	rep := &beatloop.Reporter{W: o.Errs, Prefix: o.Prefix, Every: time.Second}

	a, err := o.Connect()
	if err != nil {
		if !errors.Is(err, agent.ErrNoObserver) {
			return Result{}, err
		}
		fmt.Fprintf(o.Errs, "%s%v; the command runs anyway, connecting is retried every %v\n", o.Prefix, err, o.Interval)
	}
	defer func() {
		if a != nil {
			a.Close()
		}
	}()

	cmd := exec.Command(o.Argv[0], o.Argv[1:]...)
	cmd.Stdin = o.Stdin
	cmd.Stdout, cmd.Stderr = o.Stdout, o.Stderr
	start := time.Now()
	var lastOut atomic.Int64
	if o.RequireOutputWithin > 0 {
		cmd.Stdout = stampWriter{w: o.Stdout, start: start, last: &lastOut}
		cmd.Stderr = stampWriter{w: o.Stderr, start: start, last: &lastOut}
		// A grandchild holding the pipes open must not keep us waiting
		// after the child itself exited.
		cmd.WaitDelay = time.Second
	}
	if err := cmd.Start(); err != nil {
		return Result{}, fmt.Errorf("exec %q: %w", o.Argv[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	quiet := false
	beat := func() {
		if a == nil {
			na, err := o.Connect()
			if err != nil {
				return
			}
			a = na
		}
		if o.RequireOutputWithin > 0 {
			silent := time.Since(start) - time.Duration(lastOut.Load())
			if silent > o.RequireOutputWithin {
				if !quiet {
					fmt.Fprintf(o.Errs, "%schild wrote no output for %v: beats paused\n", o.Prefix, silent.Round(time.Millisecond))
					quiet = true
				}
				return
			}
			if quiet {
				fmt.Fprintf(o.Errs, "%schild output resumed: beats resumed\n", o.Prefix)
				quiet = false
			}
		}
		r := a.Beat(o.Status, o.Payload)
		if o.Verbose {
			fmt.Fprintf(o.Errs, "%sbeat %s\n", o.Prefix, r)
		}
		rep.Report("beat", r)
	}

	t := time.NewTicker(o.Interval)
	defer t.Stop()
	beat()
	var werr error
loop:
	for {
		select {
		case werr = <-done:
			break loop
		case s := <-o.Signals:
			_ = cmd.Process.Signal(s)
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
			werr = <-done
			break loop
		case <-t.C:
			beat()
		}
	}

	rep.Flush()
	var res Result
	ps := cmd.ProcessState
	if ps == nil {
		return res, fmt.Errorf("exec %q: wait: %w", o.Argv[0], werr)
	}
	ws, _ := ps.Sys().(syscall.WaitStatus)
	switch {
	case ws.Signaled():
		res.ExitCode = 128 + int(ws.Signal())
	default:
		res.ExitCode = ps.ExitCode()
	}
	if res.ExitCode != 0 {
		if a == nil {
			if na, err := o.Connect(); err == nil {
				a = na
			}
		}
		if a != nil {
			r := beatloop.SendTerminal(a, beatloop.TerminalPatience)
			rep.Every = 0
			rep.Report("terminal frame", r)
		}
	}
	return res, nil
}
