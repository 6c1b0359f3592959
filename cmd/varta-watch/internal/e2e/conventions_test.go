package e2e

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryTestSaysWhetherItIsParallel keeps the package's convention: a
// test starts its own daemon in its own directory and calls t.Parallel
// first, or its first statement is preceded by a "// Not parallel: <why>"
// comment (it measures timing, or depends on a quick restart). A new test
// that does neither would silently run serially and slow make test down.
func TestEveryTestSaysWhetherItIsParallel(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !strings.HasPrefix(fn.Name.Name, "Test") || fn.Name.Name == "TestMain" || fn.Body == nil {
				continue
			}
			checked++
			if len(fn.Body.List) > 0 && isParallelCall(fn.Body.List[0]) {
				continue
			}
			if notParallelComment(f, fset, fn) {
				continue
			}
			t.Errorf("%s: %s neither calls t.Parallel() first nor says why not in a \"// Not parallel: ...\" comment at its start",
				fset.Position(fn.Pos()), fn.Name.Name)
		}
	}
	if checked < 50 {
		t.Fatalf("checked %d tests: the parser did not see the package's tests", checked)
	}
}

// isParallelCall reports whether s is t.Parallel().
func isParallelCall(s ast.Stmt) bool {
	es, ok := s.(*ast.ExprStmt)
	if !ok {
		return false
	}
	call, ok := es.X.(*ast.CallExpr)
	if !ok {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "Parallel" && len(call.Args) == 0
}

// notParallelComment reports whether a "// Not parallel:" comment opens
// fn's body (before its first statement).
func notParallelComment(f *ast.File, fset *token.FileSet, fn *ast.FuncDecl) bool {
	end := fn.Body.End()
	if len(fn.Body.List) > 0 {
		end = fn.Body.List[0].Pos()
	}
	for _, cg := range f.Comments {
		if cg.Pos() > fn.Body.Lbrace && cg.End() <= end && strings.HasPrefix(cg.List[0].Text, "// Not parallel: ") {
			return true
		}
	}
	return false
}
