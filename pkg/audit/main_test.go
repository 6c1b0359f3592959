package audit

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv switches the test binary into a helper process (see TestMain).
const helperEnv = "VARTA_AUDIT_TEST_HELPER"

// TestMain runs a helper instead of the tests when the test binary is
// re-executed by a test with helperEnv set.
func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "writeloop":
		helperWriteLoop(os.Getenv("VARTA_AUDIT_PATH"))
	case "rlimit":
		helperRlimit(os.Getenv("VARTA_AUDIT_PATH"))
	default:
		fmt.Fprintln(os.Stderr, "unknown helper", os.Getenv(helperEnv))
		os.Exit(2)
	}
}

// helperWriteLoop opens the log, reports its boot reason and writes
// records until it is killed.
func helperWriteLoop(path string) {
	w, err := Open(Options{Path: path, MaxBytes: 64 << 10, QueueSize: 32})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("ready", w.Boot().Reason)
	for i := 0; ; i++ {
		switch i % 3 {
		case 0:
			w.Spawn(SpawnRecord{ObserverNs: uint64(i), AgentPid: uint32(i%50 + 1), ChildPid: uint32(i + 2), Program: "/usr/bin/restart", Source: SourceInline, TemplateLen: 20})
		case 1:
			w.Complete(CompleteRecord{ObserverNs: uint64(i), AgentPid: uint32(i%50 + 1), ChildPid: uint32(i + 1), Outcome: OutcomeKilled, ExitCode: NoExitCode, Signal: 9, DurationNs: 5})
		default:
			w.Refused(RefusedRecord{ObserverNs: uint64(i), AgentPid: uint32(i%50 + 1), Reason: ReasonOutstandingInFlight.String()})
		}
		if i%16 == 0 {
			time.Sleep(50 * time.Microsecond)
		}
	}
}

// helperRlimit writes under a small RLIMIT_FSIZE until writes fail, then
// reports what it saw and closes.
func helperRlimit(path string) {
	const limit = 16 << 10
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: limit, Max: limit}); err != nil {
		fmt.Println("error setrlimit", err)
		os.Exit(1)
	}
	w, err := Open(Options{Path: path})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	for i := 0; i < 1000 && w.Stats().WriteErrors == 0; i++ {
		w.Refused(RefusedRecord{AgentPid: 3, Reason: ReasonOutstandingCapacity.String()})
		w.Flush()
	}
	st := w.Stats()
	err = w.Close()
	fmt.Printf("written %d write_errors %d dropped %d close_error %t\n", st.Written, st.WriteErrors, w.Stats().Dropped, err != nil)
}

// startHelper re-executes the test binary as a helper and returns it with
// the first line it printed.
func startHelper(t *testing.T, mode, path string) (*exec.Cmd, string, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "VARTA_AUDIT_PATH="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(out)
	line, err := br.ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper %s: %v", mode, err)
	}
	return cmd, strings.TrimSpace(line), br
}
