package testsupport

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Daemon is a running varta-watch (or a program that runs it, such as
// systemd-socket-activate) with its socket and events file in Dir.
type Daemon struct {
	t          testing.TB
	Cmd        *exec.Cmd
	Dir        string
	Socket     string // Dir/varta.sock
	EventsFile string // Dir/events.tsv
	Stdout     *Buffer
	Stderr     *Buffer
	Done       chan struct{} // closed when the process has exited
	ExitErr    error         // what Wait returned; read after Done
}

// NewDaemon describes a daemon with its socket and events file in dir; Run
// starts it.
func NewDaemon(t testing.TB, dir string) *Daemon {
	return &Daemon{t: t, Dir: dir, Socket: SocketPath(t, dir, "varta.sock"), EventsFile: filepath.Join(dir, "events.tsv"),
		Stdout: &Buffer{}, Stderr: &Buffer{}, Done: make(chan struct{})}
}

// Args returns the flags naming the daemon's socket and events file,
// followed by extra.
func (d *Daemon) Args(extra ...string) []string {
	return append([]string{"--socket", d.Socket, "--export-file", d.EventsFile}, extra...)
}

// Run starts cmd with its output captured in Stdout and Stderr. At the end
// of the test it kills the process, fails the test if the race detector
// reported a data race on its stderr (the e2e tests build varta-watch with
// -race), and logs that stderr if the test failed.
func (d *Daemon) Run(cmd *exec.Cmd) {
	d.t.Helper()
	d.Cmd = cmd
	cmd.Stdout, cmd.Stderr = d.Stdout, d.Stderr
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	go func() { d.ExitErr = cmd.Wait(); close(d.Done) }()
	d.t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		<-d.Done
		if strings.Contains(d.Stderr.String(), "WARNING: DATA RACE") {
			d.t.Errorf("data race in %s", filepath.Base(cmd.Path))
		}
		if d.t.Failed() {
			d.t.Logf("%s stderr:\n%s", filepath.Base(cmd.Path), d.Stderr.String())
		}
	})
}

// Start runs the varta-watch binary bin with its socket and events file in
// dir, the extra environment env and the flags args, and waits until the
// socket exists.
func Start(t testing.TB, bin, dir string, env []string, args ...string) *Daemon {
	t.Helper()
	d := NewDaemon(t, dir)
	cmd := exec.Command(bin, d.Args(args...)...)
	cmd.Env = append(os.Environ(), env...)
	d.Run(cmd)
	d.WaitSocket(20 * time.Second)
	return d
}

// Exited reports whether the process has exited.
func (d *Daemon) Exited() bool {
	select {
	case <-d.Done:
		return true
	default:
		return false
	}
}

// WaitSocket waits until the socket file exists, failing the test at once
// if the daemon exits first.
func (d *Daemon) WaitSocket(timeout time.Duration) {
	d.t.Helper()
	Eventually(d.t, timeout, "socket "+d.Socket, func() bool {
		if d.Exited() {
			d.t.Fatalf("varta-watch exited early: %v\n%s", d.ExitErr, d.Stderr.String())
		}
		_, err := os.Stat(d.Socket)
		return err == nil
	})
}

// Stop sends sig, waits up to 30 s for the process to exit and returns
// its exit code.
func (d *Daemon) Stop(sig syscall.Signal) int {
	d.t.Helper()
	d.Cmd.Process.Signal(sig)
	select {
	case <-d.Done:
	case <-time.After(30 * time.Second):
		d.t.Fatal("varta-watch did not exit")
	}
	return d.Cmd.ProcessState.ExitCode()
}

// PromAddr waits for the metrics address varta-watch prints as the first
// line of its stdout when --prom-addr asks for port 0.
func (d *Daemon) PromAddr() string {
	d.t.Helper()
	var addr string
	Eventually(d.t, 10*time.Second, "metrics address on stdout", func() bool {
		line, _, ok := strings.Cut(d.Stdout.String(), "\n")
		addr = strings.TrimSpace(line)
		return ok
	})
	return addr
}

// ReadEvents parses the events file as it is now (nil if it does not exist
// yet).
func (d *Daemon) ReadEvents() []Event {
	d.t.Helper()
	return ReadEvents(d.t, d.EventsFile)
}

// WaitEvents polls the events file until match holds for the events so
// far, and returns them.
func (d *Daemon) WaitEvents(timeout time.Duration, what string, match func([]Event) bool) []Event {
	d.t.Helper()
	var evs []Event
	Eventually(d.t, timeout, what, func() bool {
		evs = d.ReadEvents()
		return match(evs)
	})
	return evs
}
