package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/cmd/varta-watch/internal/testsupport"
)

// TestExportKindsLeavesOutBeats: with --export-kinds -beat the events file
// gets the stall of an agent but none of its beats.
func TestExportKindsLeavesOutBeats(t *testing.T) {
	t.Parallel()
	d := start(t, "--threshold-ms", "300", "--export-kinds", "-beat")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, pid := d.agent(ctx, "self", "1,2,3", 30*time.Second, nil)
	evs := d.WaitEvents(10*time.Second, "stall", func(evs []event) bool { return len(testsupport.Filter(evs, "stall", strconv.Itoa(pid))) == 1 })
	if beats := testsupport.Filter(evs, "beat", ""); len(beats) != 0 {
		t.Fatalf("beat lines written despite --export-kinds -beat: %+v", beats)
	}
}

// openPty returns the master side and the path of a new pseudo-terminal.
func openPty(t *testing.T) (*os.File, string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	return m, "/dev/pts/" + strconv.FormatUint(uint64(n), 10)
}

// TestExportStdoutRendering: "--export-file -" renders for a person on a
// terminal (wall-clock time, aligned columns, the terminal nonce spelled
// out) and keeps the file format on a pipe.
func TestExportStdoutRendering(t *testing.T) {
	t.Parallel()
	human := regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3}  beat      pid (\d+) +nonce 1 +ok +payload 0\r?$`)
	tsv := regexp.MustCompile(`^\d+\tbeat\t(\d+)\t1\tok\t0$`)
	for _, tc := range []struct {
		name string
		tty  bool
		want *regexp.Regexp
	}{
		{"terminal", true, human},
		{"pipe", false, tsv},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := newDir(t)
			sock := filepath.Join(dir, "varta.sock")
			cmd := exec.Command(binPath, "--socket", sock, "--threshold-ms", "5000", "--export-file", "-")
			var out *os.File
			if tc.tty {
				m, pts := openPty(t)
				s, err := os.OpenFile(pts, os.O_RDWR|syscall.O_NOCTTY, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				cmd.Stdout, out = s, m
			} else {
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				cmd.Stdout, out = w, r
				defer w.Close()
			}
			var stderr testsupport.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
			testsupport.Eventually(t, 20*time.Second, "socket", func() bool { _, err := os.Stat(sock); return err == nil })
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			_, pid := startAgent(ctx, t, sock, "self", "1", 30*time.Second, nil)

			lines := make(chan string, 16)
			go func() {
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			deadline := time.After(10 * time.Second)
			for {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatalf("output closed; stderr:\n%s", stderr.String())
					}
					if m := tc.want.FindStringSubmatch(l); m != nil {
						if m[1] != strconv.Itoa(pid) {
							t.Fatalf("line for pid %s, want %d: %q", m[1], pid, l)
						}
						return
					}
					if strings.Contains(l, "beat") {
						t.Fatalf("beat line in the wrong format: %q", l)
					}
				case <-deadline:
					t.Fatalf("no beat line; stderr:\n%s", stderr.String())
				}
			}
		})
	}
}
