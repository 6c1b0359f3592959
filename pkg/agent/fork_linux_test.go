package agent_test

import (
	"os"
	"runtime"
	"runtime/debug"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/pkg/agent"
	"github.com/varta-go/varta/pkg/vlp"
)

// TestForkedChildSendsItsOwnPid forks the test process without exec (a raw
// clone, as a C library's fork does) and has the child beat once through
// the parent's Agent: the frame must carry the child's pid, as the kernel
// reports it, although the Agent does not call getpid while the process
// has not forked. The parent's next beat carries the parent's pid again.
//
// The child runs Go code on a copy of one thread of a multi-threaded
// runtime, which is only sound for code that neither allocates nor
// blocks; Beat over a Unix socket is such code (TestBeatDoesNotAllocate).
// The race detector's runtime is not, so the test needs a build without
// -race.
func TestForkedChildSendsItsOwnPid(t *testing.T) {
	if raceEnabled {
		t.Skip("a forked child cannot run the race detector's runtime")
	}
	p := sockPath(t)
	r := listenUnix(t, p)
	a := connect(t, agent.Options{SocketPath: p})
	parent := uint32(os.Getpid())
	if res := a.Beat(vlp.StatusOk, 1); !res.Sent() {
		t.Fatal(res)
	}
	if f, _ := recvFrame(t, r); f.Pid != parent {
		t.Fatalf("parent's frame carries pid %d, want %d", f.Pid, parent)
	}

	runtime.GC()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	runtime.LockOSThread()
	child, _, errno := unix.RawSyscall6(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
	if errno != 0 {
		runtime.UnlockOSThread()
		t.Fatalf("fork: %v", errno)
	}
	if child == 0 {
		code := uintptr(0)
		if res := a.Beat(vlp.StatusDegraded, 2); !res.Sent() {
			code = 1
		}
		unix.RawSyscall(unix.SYS_EXIT_GROUP, code, 0, 0)
	}
	runtime.UnlockOSThread()
	if status := waitChild(t, int(child)); !status.Exited() || status.ExitStatus() != 0 {
		t.Fatalf("child: wait status %v (exit 1: the beat was not sent)", status)
	}

	f, d := recvFrame(t, r)
	if f.Pid != uint32(child) || f.Status != vlp.StatusDegraded || f.Payload != 2 {
		t.Fatalf("child's frame %+v, want pid %d status Degraded payload 2", f, child)
	}
	if d.HasCred && d.Pid != int32(child) {
		t.Fatalf("child's frame: kernel reports pid %d, frame carries %d", d.Pid, f.Pid)
	}
	if res := a.Beat(vlp.StatusOk, 3); !res.Sent() {
		t.Fatal(res)
	}
	if f, _ := recvFrame(t, r); f.Pid != parent || f.Payload != 3 {
		t.Fatalf("parent's frame after the fork %+v, want pid %d payload 3", f, parent)
	}
}

// waitChild reaps pid, killing it if it has not exited within 10 s.
func waitChild(t *testing.T, pid int) syscall.WaitStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if err != nil && err != syscall.EINTR {
			t.Fatalf("wait for child %d: %v", pid, err)
		}
		if got == pid {
			return ws
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			_, _ = syscall.Wait4(pid, &ws, 0, nil)
			t.Fatalf("child %d did not exit within 10 s (killed)", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
