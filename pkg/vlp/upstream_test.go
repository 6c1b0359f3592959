package vlp_test

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// vectorCopies maps each file of the reference vector folder to the
// repository's copy of it (paths relative to this package). The tests of
// every module read the copies, so a lone clone of the repository is
// self-contained.
var vectorCopies = map[string]string{
	"vlp-test-vectors.json": filepath.Join("testdata", "vlp-test-vectors.json"),
	"audit-example.log":     filepath.Join("..", "audit", "testdata", "audit-example.log"),
}

// upstreamVectorsDir is where the reference vectors live when the
// repository is checked out next to them: ../shared/vectors relative to the
// repository root. VARTA_UPSTREAM_VECTORS overrides it (for a checkout
// elsewhere, such as a git worktree).
func upstreamVectorsDir() string {
	if d := os.Getenv("VARTA_UPSTREAM_VECTORS"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "shared", "vectors")
}

// TestVectorCopiesMatchUpstream checks that the repository's copies of the
// conformance vectors and the example audit log are byte-identical to the
// reference folder, and that every file there has a copy. It skips when the
// folder is absent (a lone clone), where the copies are the reference.
func TestVectorCopiesMatchUpstream(t *testing.T) {
	dir := upstreamVectorsDir()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		t.Skipf("no reference vectors at %s; the repository's copies are used as they are", dir)
	}
	if err != nil {
		t.Fatalf("reference vectors %s: %v", dir, err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		t.Fatalf("reference vectors %s: no files", dir)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			copyPath, ok := vectorCopies[name]
			if !ok {
				t.Fatalf("%s has no copy in the repository: copy it into a testdata/ folder and list it in vectorCopies", filepath.Join(dir, name))
			}
			want, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(copyPath)
			if err != nil {
				t.Fatalf("repository copy: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s differs from %s (%d vs %d bytes): refresh the copy", copyPath, filepath.Join(dir, name), len(got), len(want))
			}
		})
	}
}
