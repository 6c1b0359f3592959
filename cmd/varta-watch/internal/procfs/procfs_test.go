package procfs

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"unsafe"
)

func TestParseStartTime(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want uint64
		ok   bool
	}{
		{"plain", "123 (sleep) S 1 123 123 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 987654 5 6 7", 987654, true},
		{"spaces and parens in comm", "42 (a) b (c)) R 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 555 1", 555, true},
		{"truncated", "1 (x) S 1 2 3", 0, false},
		{"no paren", "garbage", 0, false},
		{"non numeric", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 abc 1", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStartTime([]byte(tc.in))
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("got %d, %v; want %d ok=%v", got, err, tc.want, tc.ok)
			}
		})
	}
}

func TestIdentityOfRealProcess(t *testing.T) {
	self, err := Default.Identity(uint32(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	ns, err := Default.SelfPidNamespace()
	if err != nil {
		t.Fatal(err)
	}
	if self.NSInode != ns || self.Generation == 0 {
		t.Fatalf("identity %+v, self ns %d", self, ns)
	}
	cmd := exec.Command("sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := uint32(cmd.Process.Pid)
	child, err := Default.Identity(pid)
	if err != nil {
		t.Fatal(err)
	}
	if child.Generation < self.Generation {
		t.Fatalf("child started before us? child %d self %d", child.Generation, self.Generation)
	}
	if !Alive(pid) {
		t.Fatal("child not alive")
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if _, err := Default.Identity(pid); !errors.Is(err, ErrGone) {
		t.Fatalf("after exit: %v, want ErrGone", err)
	}
	if Alive(pid) {
		t.Fatal("reaped child still alive")
	}
	if m, err := Default.PidMax(); err != nil || m < 300 {
		t.Fatalf("pid_max %d, %v", m, err)
	}
}

func TestZombie(t *testing.T) {
	cmd := exec.Command("sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := uint32(cmd.Process.Pid)
	if Default.Zombie(pid) {
		t.Fatal("a running process is a zombie")
	}
	_ = cmd.Process.Kill()
	var ws syscall.WaitStatus
	// Wait for the exit without reaping (WNOWAIT), then look.
	for {
		var info [128]byte
		_, _, e := syscall.Syscall6(syscall.SYS_WAITID, 1 /* P_PID */, uintptr(pid), uintptr(unsafe.Pointer(&info[0])), syscall.WEXITED|0x1000000 /* WNOWAIT */, 0, 0)
		if e != syscall.EINTR {
			break
		}
	}
	if !Default.Zombie(pid) || !Alive(pid) {
		t.Fatal("an unreaped child is not a zombie")
	}
	_, _ = syscall.Wait4(int(pid), &ws, 0, nil)
	if Default.Zombie(pid) {
		t.Fatal("a reaped child is still a zombie")
	}
}
