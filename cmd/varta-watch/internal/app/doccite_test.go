package app

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// citation matches a reference to one of the repository's docs in a Go
// comment: docs/NAME.md, optionally followed by "§N" (and "to §M" or
// "and §M") or by a quoted section title: docs/audit.md, "The file".
var citation = regexp.MustCompile(`docs/([a-z-]+\.md)(?:,? \(?"([^"]+)"|((?: §\d+)(?:(?:,| and| to) §\d+)*))?`)

// outsideSpec is the specification folder that may sit next to a checkout
// (spelled in two parts so that this file does not name it).
const outsideSpec = "shared" + "/spec"

var sectionNumber = regexp.MustCompile(`§(\d+)`)

// TestDocCitationsResolve: every docs/*.md a comment in the repository's Go
// code cites exists, and so does every section it names (a "## N." heading
// for §N, a heading with the quoted title otherwise). Comments cite the
// project's own docs, never an outside specification: a numbered section
// that is not part of a docs/NAME.md citation fails the test.
func TestDocCitationsResolve(t *testing.T) {
	root := filepath.Join("..", "..", "..", "..")
	docs := map[string]string{}
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !(strings.HasSuffix(path, ".go") || strings.HasSuffix(path, ".md")) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		// The specification folder next to a checkout is not part of the
		// repository: nothing may point a reader at it.
		if strings.Contains(string(b), outsideSpec) {
			t.Errorf("%s names the specification folder outside the repository; cite docs/ instead", path)
		}
		if strings.HasSuffix(path, ".md") {
			return nil
		}
		// A numbered section outside a docs/NAME.md citation cites something
		// the repository does not hold (a section of a bare "observer.md").
		if rest := citation.ReplaceAllStringFunc(string(b), func(m string) string {
			return strings.Repeat("\n", strings.Count(m, "\n")) // keep the line numbers
		}); sectionNumber.MatchString(rest) {
			for i, line := range strings.Split(rest, "\n") {
				if sectionNumber.MatchString(line) {
					t.Errorf("%s:%d cites a section outside docs/NAME.md: %q", path, i+1, strings.TrimSpace(line))
				}
			}
		}
		for _, m := range citation.FindAllStringSubmatch(string(b), -1) {
			n++
			doc, ok := docs[m[1]]
			if !ok {
				d, err := os.ReadFile(filepath.Join(root, "docs", m[1]))
				if err != nil {
					t.Errorf("%s cites docs/%s: %v", path, m[1], err)
					docs[m[1]] = ""
					continue
				}
				doc = string(d)
				docs[m[1]] = doc
			}
			if doc == "" {
				continue
			}
			// A title may run over a comment line break.
			title := strings.Join(strings.Fields(strings.ReplaceAll(m[2], "//", "")), " ")
			if title != "" && !hasHeading(doc, func(h string) bool { return strings.Contains(h, title) }) {
				t.Errorf("%s cites docs/%s %q: no such heading", path, m[1], title)
			}
			for _, num := range sectionNumber.FindAllStringSubmatch(m[3], -1) {
				if !hasHeading(doc, func(h string) bool { return strings.HasPrefix(h, num[1]+". ") }) {
					t.Errorf("%s cites docs/%s §%s: no \"## %s.\" heading", path, m[1], num[1], num[1])
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no citations found: the walk did not reach the sources")
	}
}

// hasHeading reports whether a Markdown heading of doc satisfies ok (given
// the heading text without the leading #s).
func hasHeading(doc string, ok func(string) bool) bool {
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "#") && ok(strings.TrimSpace(strings.TrimLeft(line, "#"))) {
			return true
		}
	}
	return false
}
