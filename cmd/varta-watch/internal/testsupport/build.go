package testsupport

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Import paths of the three programs.
const (
	WatchPkg = "github.com/varta-go/varta/cmd/varta-watch"
	BeatPkg  = "github.com/varta-go/varta/cmd/varta-beat"
	AuditPkg = "github.com/varta-go/varta/cmd/varta-audit"
)

// Binaries are the paths of the programs Build compiled.
type Binaries struct {
	Dir                string // the world-traversable directory holding them
	Watch, Beat, Audit string
}

// Build compiles varta-watch (with the race detector when watchRace is
// set, so that a data race in the daemon fails the test that drove it),
// varta-beat and varta-audit into a fresh directory that other users may
// enter (tests run agents under other uids). Call it once from TestMain;
// Remove deletes the directory.
func Build(watchRace bool) (Binaries, error) {
	dir, err := os.MkdirTemp("", "varta-test-bin-")
	if err != nil {
		return Binaries{}, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return Binaries{}, err
	}
	b := Binaries{Dir: dir, Watch: filepath.Join(dir, "varta-watch"),
		Beat: filepath.Join(dir, "varta-beat"), Audit: filepath.Join(dir, "varta-audit")}
	watch := []string{"build", "-o", b.Watch, WatchPkg}
	if watchRace {
		watch = []string{"build", "-race", "-o", b.Watch, WatchPkg}
	}
	for _, args := range [][]string{
		watch,
		{"build", "-o", b.Beat, BeatPkg},
		{"build", "-o", b.Audit, AuditPkg},
	} {
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			os.RemoveAll(dir)
			return Binaries{}, fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return b, nil
}

// Remove deletes the binaries' directory.
func (b Binaries) Remove() { os.RemoveAll(b.Dir) }

// CopyExecutable copies the file from to an executable file to (0755).
func CopyExecutable(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o755)
}
