// Package core_test holds the architecture rules of the core packages: core
// never imports Fyne, dependencies point one way, and core/hub knows nothing
// of tensors or pipelines.
package core_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const module = "modelpub"

// fyneModule is Fyne's module path (spelled so that a grep for Fyne imports
// in core/ does not match this test).
const fyneModule = "fyne" + ".io/"

// importGraph parses every non-test Go file of the module (the test reads
// the files itself, so go test's cache notices any change to them) and
// returns each package's direct imports.
func importGraph(t *testing.T) map[string][]string {
	t.Helper()
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	graph := map[string][]string{}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(p))
		if err != nil {
			return err
		}
		pkg := path.Join(module, filepath.ToSlash(rel))
		for _, imp := range f.Imports {
			ip, _ := strconv.Unquote(imp.Path.Value)
			graph[pkg] = append(graph[pkg], ip)
		}
		if _, ok := graph[pkg]; !ok {
			graph[pkg] = nil
		}
		return nil
	})
	require.NoError(t, err)
	return graph
}

// reach returns every import reachable from pkg: the module's own packages
// transitively, and the direct imports of each of them.
func reach(graph map[string][]string, pkg string) map[string]bool {
	seen := map[string]bool{}
	var walk func(string)
	walk = func(p string) {
		for _, d := range graph[p] {
			if seen[d] {
				continue
			}
			seen[d] = true
			if d == module || strings.HasPrefix(d, module+"/") {
				walk(d)
			}
		}
	}
	walk(pkg)
	return seen
}

func corePackages(graph map[string][]string) []string {
	var out []string
	for p := range graph {
		if strings.HasPrefix(p, module+"/core/") {
			out = append(out, p)
		}
	}
	return out
}

func TestCoreImportsNoFyne(t *testing.T) {
	graph := importGraph(t)
	core := corePackages(graph)
	require.Contains(t, core, module+"/core/tensors")
	for _, p := range core {
		for d := range reach(graph, p) {
			assert.False(t, strings.HasPrefix(d, fyneModule), "%s reaches %s: core must not import Fyne", p, d)
			assert.False(t, d == module+"/gui" || d == module+"/cli", "%s reaches %s", p, d)
		}
	}
}

func TestDependenciesPointOneWay(t *testing.T) {
	graph := importGraph(t)
	forbidden := map[string][]string{
		module + "/core/tensors": {module + "/core/pipeline", module + "/core/hub"},
		module + "/core/hub":     {module + "/core/tensors", module + "/core/pipeline"},
	}
	for _, p := range corePackages(graph) {
		for owner, bad := range forbidden {
			if p != owner && !strings.HasPrefix(p, owner+"/") {
				continue
			}
			deps := reach(graph, p)
			for _, b := range bad {
				assert.False(t, deps[b], "%s must not depend on %s", p, b)
			}
		}
	}
}
