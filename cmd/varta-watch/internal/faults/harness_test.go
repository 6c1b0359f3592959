package faults

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
)

// Paths of the binaries TestMain builds.
var watchBin, beatBin, auditBin string

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == soakContArg {
		os.Exit(soakCont(os.Args[2:]))
	}
	if spec := os.Getenv(roleEnv); spec != "" {
		os.Exit(runRole(spec)) // a helper process (roles_test.go)
	}
	// Built without the race detector: the cases measure resources and
	// throughput of the daemon as it ships.
	bins, err := testsupport.Build(false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	watchBin, beatBin, auditBin = bins.Watch, bins.Beat, bins.Audit
	code := m.Run()
	bins.Remove()
	os.Exit(code)
}

// startWatch runs varta-watch with its socket and events file in dir plus
// args, and waits until the socket exists. Cleanup kills it.
func startWatch(t testing.TB, dir string, args ...string) *testsupport.Daemon {
	t.Helper()
	return testsupport.Start(t, watchBin, dir, nil, args...)
}

// procFDs returns the number of open descriptors of pid.
func procFDs(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(ents)
}

// procRSSKiB returns VmRSS of pid in KiB.
func procRSSKiB(pid int) int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return -1
}
