package agent_test

import (
	"os"
	"strings"
	"testing"
)

// TestPackageDocSnippetIsTheExample: the code in the package comment (what
// go doc shows; go doc does not show examples) is the package Example,
// which go test compiles, line for line and in order, so that the two
// cannot drift apart.
func TestPackageDocSnippetIsTheExample(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	ex, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	var snippet []string
	for _, l := range strings.Split(string(doc), "\n") {
		if code, ok := strings.CutPrefix(l, "//\t"); ok {
			if c := codeOnly(code); c != "" {
				snippet = append(snippet, c)
			}
		}
	}
	if len(snippet) < 15 {
		t.Fatalf("package comment has %d code lines, want the integration snippet", len(snippet))
	}
	body := string(ex)
	start := strings.Index(body, "func Example() {")
	end := strings.Index(body[start+1:], "\nfunc ")
	if start < 0 || end < 0 {
		t.Fatal("no package Example in example_test.go")
	}
	var example []string
	for _, l := range strings.Split(body[start:start+1+end], "\n") {
		if c := codeOnly(l); c != "" {
			example = append(example, c)
		}
	}
	i := 0
	for _, l := range example {
		if i < len(snippet) && l == snippet[i] {
			i++
		}
	}
	if i < len(snippet) {
		t.Fatalf("package comment line %q is not in the Example (in this order)", snippet[i])
	}
}

// codeOnly is a line of Go without its comment and surrounding space.
func codeOnly(l string) string {
	if i := strings.Index(l, "//"); i >= 0 {
		l = l[:i]
	}
	return strings.Join(strings.Fields(l), " ")
}
