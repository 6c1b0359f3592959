package app

import (
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestManPageCurrent fails when man/varta-beat.1 differs from what the App
// generates. Run "make man" (or this test with -update) to refresh it.
func TestManPageCurrent(t *testing.T) {
	const path = "../../../../man/varta-beat.1"
	got, err := ManPage()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read committed man page: %v (run make man)", err)
	}
	if string(want) != got {
		t.Fatalf("%s is stale: run make man", path)
	}
}
