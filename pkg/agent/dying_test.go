package agent_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/pkg/agent"
	"github.com/varta-go/varta/pkg/vlp"
)

// The test binary doubles as the helper process for the signal and panic
// helpers: with helperEnv set it connects, beats once and then waits for a
// signal or panics.
const (
	helperEnv     = "VARTA_AGENT_TEST_HELPER"
	helperSockEnv = "VARTA_AGENT_TEST_SOCK"
)

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "signal":
		a, err := agent.DialUnix(os.Getenv(helperSockEnv))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		a.TerminalOnSignal()
		a.Beat(vlp.StatusOk, 0) // tells the test the handler is in place
		time.Sleep(time.Minute)
		os.Exit(0)
	case "panic":
		a, err := agent.DialUnix(os.Getenv(helperSockEnv))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer a.TerminalOnPanic()
		a.Beat(vlp.StatusOk, 0)
		panic("helper boom")
	}
}

func helper(t *testing.T, mode, sock string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperSockEnv+"="+sock)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, &stderr
}

func TestTerminalOnSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			p := sockPath(t)
			r := listenUnix(t, p)
			cmd, stderr := helper(t, "signal", p)
			first, _ := recvFrame(t, r)
			if first.Nonce != 1 || first.Pid != uint32(cmd.Process.Pid) {
				t.Fatalf("first beat %+v from child %d", first, cmd.Process.Pid)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			f, _ := recvFrame(t, r)
			if !f.IsTerminal() || f.Pid != first.Pid || f.Timestamp < first.Timestamp {
				t.Fatalf("after %v: %+v, want a terminal frame", sig, f)
			}
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("wait: %v (stderr %s)", err, stderr)
			}
			ws := ee.Sys().(syscall.WaitStatus)
			if !ws.Signaled() || ws.Signal() != sig {
				t.Fatalf("child exit %v, want killed by %v", ws, sig)
			}
			expectNothing(t, r)
		})
	}
}

func TestTerminalOnPanic(t *testing.T) {
	p := sockPath(t)
	r := listenUnix(t, p)
	cmd, stderr := helper(t, "panic", p)
	recvFrame(t, r)
	f, _ := recvFrame(t, r)
	if !f.IsTerminal() || f.Pid != uint32(cmd.Process.Pid) {
		t.Fatalf("%+v, want a terminal frame from %d", f, cmd.Process.Pid)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("wait: %v, want exit status 2 of a panic", err)
	}
	if !strings.Contains(stderr.String(), "panic: helper boom") || !strings.Contains(stderr.String(), "goroutine") {
		t.Fatalf("stderr lacks the original panic and stack:\n%s", stderr)
	}
}
