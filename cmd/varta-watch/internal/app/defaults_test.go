package app

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestDefaultsFileNamesEveryFlag: deploy/default/varta-watch (the
// package's /etc/default/varta-watch) has a line, set or commented out,
// for the variable of every flag and for nothing else, and its set lines
// make a valid configuration.
func TestDefaultsFileNamesEveryFlag(t *testing.T) {
	path := filepath.Join("..", "..", "..", "..", "deploy", "default", "varta-watch")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line := regexp.MustCompile(`^#?(VARTA_WATCH_[A-Z0-9_]+)=(.*)$`)
	named := map[string]bool{}
	set := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		if named[m[1]] {
			t.Errorf("%s appears twice", m[1])
		}
		named[m[1]] = true
		if !strings.HasPrefix(sc.Text(), "#") {
			set[m[1]] = strings.Trim(m[2], `"`)
		}
	}
	want := map[string]bool{}
	for _, fl := range flags() {
		var envs []string
		hidden := false
		switch f := fl.(type) {
		case *cli.StringFlag:
			envs, hidden = f.EnvVars, f.Hidden
		case *cli.Int64Flag:
			envs, hidden = f.EnvVars, f.Hidden
		case *cli.BoolFlag:
			envs, hidden = f.EnvVars, f.Hidden
		case *cli.StringSliceFlag:
			envs, hidden = f.EnvVars, f.Hidden
		default:
			t.Fatalf("flag type %T: teach this test about it", fl)
		}
		if hidden {
			continue
		}
		for _, e := range envs {
			want[e] = true
			if !named[e] {
				t.Errorf("%s: flag --%s has no line %s= (commented out with its default) in %s", e, fl.Names()[0], e, path)
			}
		}
	}
	for e := range named {
		if !want[e] {
			t.Errorf("%s in %s is not the variable of any flag", e, path)
		}
	}
	if len(set) == 0 {
		t.Fatal("no variable is set")
	}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range set {
			if !yield(k) {
				return
			}
		}
	}) {
		t.Setenv(k, set[k])
	}
	o, err := parse(t, nil)
	if err != nil {
		t.Fatalf("the set lines of %s are not a valid configuration: %v", path, err)
	}
	if o.Unix.Path != set["VARTA_WATCH_SOCKET"] {
		t.Fatalf("socket %q", o.Unix.Path)
	}
}
