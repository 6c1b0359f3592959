package identity

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The test binary doubles as the helper processes the tests inspect:
// VARTA_IDENTITY_HELPER selects what it does instead of running tests.
func TestMain(m *testing.M) {
	switch os.Getenv("VARTA_IDENTITY_HELPER") {
	case "":
		os.Exit(m.Run())
	case "comm":
		// Rename ourselves with prctl(PR_SET_NAME), say so, then wait for
		// stdin to close.
		if err := unix.Prctl(unix.PR_SET_NAME, uintptrOf(os.Getenv("VARTA_IDENTITY_COMM")), 0, 0, 0); err != nil {
			fmt.Fprintln(os.Stderr, "prctl:", err)
			os.Exit(1)
		}
		fmt.Println("ready")
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	case "resolve":
		pid, _ := strconv.ParseUint(os.Getenv("VARTA_IDENTITY_PID"), 10, 32)
		var c Counters
		info := Resolver{C: &c}.Resolve(uint32(pid), uint32(os.Getuid()))
		_ = json.NewEncoder(os.Stdout).Encode(struct {
			Info       *Info
			Unreadable [NumFields]uint64
		}{info, [NumFields]uint64{c.Unreadable[0].Load(), c.Unreadable[1].Load(), c.Unreadable[2].Load()}})
		os.Exit(0)
	}
	os.Exit(2)
}

func uintptrOf(s string) uintptr {
	p, err := unix.BytePtrFromString(s)
	if err != nil {
		return 0
	}
	return uintptr(unsafe.Pointer(p))
}

// startSleep starts a real process that lives until the test ends.
func startSleep(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

func TestResolveSelfAndChild(t *testing.T) {
	var c Counters
	r := Resolver{C: &c}
	cmd := startSleep(t)
	info := r.Resolve(uint32(cmd.Process.Pid), 1234)
	if info.Comm != "sleep" || !info.HasUID || info.UID != 1234 || info.UIDString() != "1234" {
		t.Fatalf("child identity %+v", info)
	}
	want, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	if real, err := filepath.EvalSymlinks(want); err == nil {
		want = real
	}
	if info.Exe != want {
		t.Fatalf("exe %q, want %q", info.Exe, want)
	}
	if info.Service != Unknown || info.Rule != -1 {
		t.Fatalf("Resolve named a service: %+v", info)
	}
	if c.Resolved.Load() != 1 || c.Unreadable[FieldComm].Load()+c.Unreadable[FieldExe].Load()+c.Unreadable[FieldCgroup].Load() != 0 {
		t.Fatalf("counters: resolved %d", c.Resolved.Load())
	}

	// A process that is gone: every field is "-", each counted.
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	gone := r.Resolve(uint32(cmd.Process.Pid), 1)
	if gone.Comm != Unknown || gone.Exe != Unknown || gone.Unit != Unknown || gone.Container != Unknown {
		t.Fatalf("vanished process identity %+v", gone)
	}
	for f := range NumFields {
		if c.Unreadable[f].Load() != 1 {
			t.Errorf("unreadable %s = %d, want 1", f, c.Unreadable[f].Load())
		}
	}
}

// TestResolveRenamedComm: a helper renames itself with prctl; comm follows,
// exe does not.
func TestResolveRenamedComm(t *testing.T) {
	for _, name := range []string{"varta-renamed", "-rf"} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), "VARTA_IDENTITY_HELPER=comm", "VARTA_IDENTITY_COMM="+name)
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				stdin.Close()
				_ = cmd.Wait()
			}()
			line, err := bufio.NewReader(out).ReadString('\n')
			if err != nil || line != "ready\n" {
				t.Fatalf("helper said %q, %v", line, err)
			}
			info := Resolver{}.Resolve(uint32(cmd.Process.Pid), uint32(os.Getuid()))
			if info.Comm != name {
				t.Fatalf("comm %q, want %q", info.Comm, name)
			}
			self, _ := os.Executable()
			if info.Exe != self {
				t.Fatalf("exe %q, want the test binary %q", info.Exe, self)
			}
			if name == "-rf" && SafeName(info.Comm) {
				t.Fatal("a comm of -rf passed as a safe name")
			}
		})
	}
}

// TestResolveUnreadableExe: /proc/<pid>/exe of another user's process is
// unreadable without privileges. As root the resolver runs in a helper
// under uid 65534; otherwise it reads pid 1 when another user owns it.
func TestResolveUnreadableExe(t *testing.T) {
	var target int
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		target = startSleep(t).Process.Pid
		dir, err := os.MkdirTemp("", "varta-identity-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		bin := filepath.Join(dir, "helper")
		copyExecutable(t, os.Args[0], bin)
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command(bin)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	} else {
		var st syscall.Stat_t
		if err := syscall.Stat("/proc/1", &st); err != nil || int(st.Uid) == os.Geteuid() {
			t.Skip("not root and pid 1 belongs to this user: no process with an unreadable exe to inspect")
		}
		target = 1
		cmd = exec.Command(os.Args[0])
	}
	cmd.Env = append(os.Environ(), "VARTA_IDENTITY_HELPER=resolve", "VARTA_IDENTITY_PID="+strconv.Itoa(target))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v: %s", err, stderr.String())
	}
	var got struct {
		Info       Info
		Unreadable [NumFields]uint64
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("helper output %q: %v", out, err)
	}
	if got.Info.Exe != Unknown || got.Unreadable[FieldExe] != 1 {
		t.Fatalf("exe %q (unreadable count %d), want %q counted once", got.Info.Exe, got.Unreadable[FieldExe], Unknown)
	}
	if got.Info.Comm == Unknown || got.Unreadable[FieldComm] != 0 {
		t.Fatalf("comm %q should stay readable", got.Info.Comm)
	}
}

func copyExecutable(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// cgroup2Mount finds a writable cgroup v2 mount, or "".
func cgroup2Mount() (string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		// ... mount-point ... - fstype source options
		pre, post, ok := strings.Cut(line, " - ")
		if !ok || !strings.HasPrefix(post, "cgroup2 ") {
			continue
		}
		f := strings.Fields(pre)
		if len(f) < 5 || f[3] != "/" {
			continue // a bind of a sub-tree: paths would not match
		}
		return f[4], nil
	}
	return "", errors.New("no cgroup v2 mount in /proc/self/mountinfo")
}

// TestResolveCgroup moves real processes into cgroup v2 directories named
// like a systemd scope and a container scope and reads them back.
func TestResolveCgroup(t *testing.T) {
	mnt, err := cgroup2Mount()
	if err != nil {
		t.Skipf("skipping: %v (needs a writable cgroup v2)", err)
	}
	n := os.Getpid()
	unitDir := filepath.Join(mnt, fmt.Sprintf("varta-test-%d.scope", n))
	sliceDir := filepath.Join(mnt, fmt.Sprintf("varta-test-%d.slice", n))
	ctrDir := filepath.Join(sliceDir, "libpod-"+hex64+".scope")
	if err := os.Mkdir(unitDir, 0o755); err != nil {
		t.Skipf("skipping: cgroup v2 at %s is not writable: %v", mnt, err)
	}
	t.Cleanup(func() { rmdirCgroup(t, unitDir) })
	if err := os.MkdirAll(ctrDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rmdirCgroup(t, ctrDir); rmdirCgroup(t, sliceDir) })

	for _, tc := range []struct {
		dir, unit, container string
	}{
		{unitDir, fmt.Sprintf("varta-test-%d.scope", n), Unknown},
		{ctrDir, "libpod-" + hex64 + ".scope", "0123456789ab"},
	} {
		cmd := exec.Command("sleep", "60")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pid := cmd.Process.Pid
		err := os.WriteFile(filepath.Join(tc.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
		if err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("move pid %d into %s: %v", pid, tc.dir, err)
		}
		var c Counters
		info := Resolver{C: &c}.Resolve(uint32(pid), 0)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if info.Unit != tc.unit || info.Container != tc.container || c.Unreadable[FieldCgroup].Load() != 0 {
			t.Errorf("in %s: unit %q container %q; want %q %q", tc.dir, info.Unit, info.Container, tc.unit, tc.container)
		}
		if !SafeUnit(info.Unit) {
			t.Errorf("unit %q not safe", info.Unit)
		}
		if info.DefaultService() != tc.unit {
			t.Errorf("default service %q, want the unit", info.DefaultService())
		}
	}
}

// rmdirCgroup removes a cgroup directory once the kernel has let go of the
// killed processes (which can take a moment after wait).
func rmdirCgroup(t *testing.T, dir string) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("remove %s: %v", dir, err)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
