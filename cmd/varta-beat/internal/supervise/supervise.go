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
	if err := o.check(); err != nil {
		return Result{}, err
	}
	s := &supervisor{o: o, rep: &beatloop.Reporter{W: o.Errs, Prefix: o.Prefix, Every: time.Second}}
	if err := s.connectFirst(); err != nil {
		return Result{}, err
	}
	defer s.close()
	cmd, err := s.startChild()
	if err != nil {
		return Result{}, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	werr := s.beatUntilExit(ctx, cmd, done)
	s.rep.Flush()
	res, err := exitResult(cmd, werr)
	if err != nil {
		return res, err
	}
	if res.ExitCode != 0 {
		s.sendTerminal()
	}
	return res, nil
}

// check validates the options Run cannot do without.
func (o *Options) check() error {
	if len(o.Argv) == 0 {
		return errors.New("exec: no command given")
	}
	if o.Interval <= 0 {
		return fmt.Errorf("exec: beat interval must be positive, got %v", o.Interval)
	}
	return nil
}

// supervisor is the state of one Run: the agent (nil while no observer
// listens), when the child started and last wrote output, and whether the
// beats are paused for lack of output.
type supervisor struct {
	o       Options
	rep     *beatloop.Reporter
	a       *agent.Agent
	start   time.Time
	lastOut atomic.Int64 // ns since start
	quiet   bool
}

// connectFirst opens the agent before the child starts. An absent observer
// is reported and retried on every beat; any other error aborts.
func (s *supervisor) connectFirst() error {
	a, err := s.o.Connect()
	if err != nil {
		if !errors.Is(err, agent.ErrNoObserver) {
			return err
		}
		fmt.Fprintf(s.o.Errs, "%s%v; the command runs anyway, connecting is retried every %v\n", s.o.Prefix, err, s.o.Interval)
	}
	s.a = a
	return nil
}

func (s *supervisor) close() {
	if s.a != nil {
		s.a.Close()
	}
}

// startChild starts the command, its output stamped when the beats depend
// on it.
func (s *supervisor) startChild() (*exec.Cmd, error) {
	o := &s.o
	cmd := exec.Command(o.Argv[0], o.Argv[1:]...)
	cmd.Stdin = o.Stdin
	cmd.Stdout, cmd.Stderr = o.Stdout, o.Stderr
	s.start = time.Now()
	if o.RequireOutputWithin > 0 {
		cmd.Stdout = stampWriter{w: o.Stdout, start: s.start, last: &s.lastOut}
		cmd.Stderr = stampWriter{w: o.Stderr, start: s.start, last: &s.lastOut}
		// A grandchild holding the pipes open must not keep us waiting
		// after the child itself exited.
		cmd.WaitDelay = time.Second
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("exec %q: %w", o.Argv[0], err)
	}
	return cmd, nil
}

// beatUntilExit beats every interval, forwards signals to the child and
// stops it when ctx ends; it returns the child's Wait error.
func (s *supervisor) beatUntilExit(ctx context.Context, cmd *exec.Cmd, done <-chan error) error {
	t := time.NewTicker(s.o.Interval)
	defer t.Stop()
	s.beat()
	for {
		select {
		case werr := <-done:
			return werr
		case sig := <-s.o.Signals:
			_ = cmd.Process.Signal(sig)
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
			return <-done
		case <-t.C:
			s.beat()
		}
	}
}

// beat sends one beat, connecting first if needed, unless the child has
// been silent for longer than RequireOutputWithin.
func (s *supervisor) beat() {
	o := &s.o
	if s.a == nil {
		a, err := o.Connect()
		if err != nil {
			return
		}
		s.a = a
	}
	if o.RequireOutputWithin > 0 && s.outputStale() {
		return
	}
	r := s.a.Beat(o.Status, o.Payload)
	if o.Verbose {
		fmt.Fprintf(o.Errs, "%sbeat %s\n", o.Prefix, r)
	}
	s.rep.Report("beat", r)
}

// outputStale reports whether the child has written nothing for longer
// than RequireOutputWithin, saying so when the beats pause or resume.
func (s *supervisor) outputStale() bool {
	o := &s.o
	silent := time.Since(s.start) - time.Duration(s.lastOut.Load())
	if silent > o.RequireOutputWithin {
		if !s.quiet {
			fmt.Fprintf(o.Errs, "%schild wrote no output for %v: beats paused\n", o.Prefix, silent.Round(time.Millisecond))
			s.quiet = true
		}
		return true
	}
	if s.quiet {
		fmt.Fprintf(o.Errs, "%schild output resumed: beats resumed\n", o.Prefix)
		s.quiet = false
	}
	return false
}

// exitResult maps how the child ended to the exit code: its own, or
// 128+signal when a signal killed it.
func exitResult(cmd *exec.Cmd, werr error) (Result, error) {
	ps := cmd.ProcessState
	if ps == nil {
		return Result{}, fmt.Errorf("exec %q: wait: %w", cmd.Args[0], werr)
	}
	if ws, _ := ps.Sys().(syscall.WaitStatus); ws.Signaled() {
		return Result{ExitCode: 128 + int(ws.Signal())}, nil
	}
	return Result{ExitCode: ps.ExitCode()}, nil
}

// sendTerminal tells the observer the child failed (a terminal frame),
// connecting once more if no observer listened so far.
func (s *supervisor) sendTerminal() {
	if s.a == nil {
		if a, err := s.o.Connect(); err == nil {
			s.a = a
		}
	}
	if s.a != nil {
		r := beatloop.SendTerminal(s.a, beatloop.TerminalPatience)
		s.rep.Every = 0
		s.rep.Report("terminal frame", r)
	}
}
