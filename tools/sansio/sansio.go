// Package sansio is a go/analysis pass that keeps the protocol core (model/)
// sans-IO: deterministic, single-threaded and free of I/O, as DESIGN.md
// section 2 requires. It checks the non-test files of every package it is run
// on (make lint runs it on ./model/...):
//
//   - no go statement, no select, no channel type (hence no make(chan)), no
//     channel send, receive, close or range over a channel;
//   - imports only from errors, fmt, strings, strconv, bytes, slices, maps,
//     cmp, sort, math, math/bits, encoding/binary, hash/crc32, unicode/utf8,
//     container/heap, iter and the module's own model packages (the -own
//     prefix); of fmt, only Sprintf and Errorf;
//   - package-level variables only of two kinds, both read-only: an error
//     sentinel (type error, initialised by errors.New or fmt.Errorf) and a
//     lookup table (an array of a basic type, initialised by a composite
//     literal of constants). No function may assign to a package-level
//     variable, increment it, take its address or slice it (a slice of an
//     array aliases it);
//   - a range over a map, or a call of maps.Keys, maps.Values or maps.All
//     that is not the argument of slices.Sorted/SortedFunc/SortedStableFunc,
//     must carry an order marker: a line comment "// order: <why>" on the
//     same line or on the line just above, saying why iteration order cannot
//     reach an output. An empty reason does not count.
package sansio

import (
	"go/ast"
	"go/token"
	"go/types"
	"strings"

	"golang.org/x/tools/go/analysis"
)

// Analyzer is the sans-IO pass.
var Analyzer = &analysis.Analyzer{
	Name: "sansio",
	Doc:  "check that the protocol core is sans-IO: no goroutines, channels, select, mutable globals, unexplained map iteration, or imports beyond a pure standard-library list",
	Run:  run,
}

// ownPrefix is the import path prefix of the module's own core packages.
var ownPrefix = "territory/model"

func init() {
	Analyzer.Flags.StringVar(&ownPrefix, "own", ownPrefix, "import path prefix of the core's own packages, which the core may import")
}

// allowedImports is the pure standard library the core may use.
var allowedImports = map[string]bool{
	"errors": true, "fmt": true, "strings": true, "strconv": true, "bytes": true,
	"slices": true, "maps": true, "cmp": true, "sort": true, "math": true,
	"math/bits": true, "encoding/binary": true, "hash/crc32": true,
	"unicode/utf8": true, "container/heap": true, "iter": true,
}

// allowedFmt are the only fmt functions the core may call: both only format.
var allowedFmt = map[string]bool{"Sprintf": true, "Errorf": true}

// OrderMarker starts the comment that explains why a map iteration's order
// does not matter.
const OrderMarker = "// order:"

type checker struct {
	pass    *analysis.Pass
	markers map[int]bool // lines of the current file that carry an order marker
	file    *token.File
	// sortedArgs are maps.Keys/Values/All calls passed straight to a sort.
	sortedArgs map[*ast.CallExpr]bool
}

func run(pass *analysis.Pass) (any, error) {
	if strings.HasSuffix(pass.Pkg.Path(), ".test") {
		return nil, nil // the generated test main
	}
	c := &checker{pass: pass}
	for _, f := range pass.Files {
		c.file = pass.Fset.File(f.Pos())
		if c.file == nil || strings.HasSuffix(c.file.Name(), "_test.go") || !strings.HasSuffix(c.file.Name(), ".go") {
			continue
		}
		c.markers = orderMarkers(c.file, f)
		c.sortedArgs = map[*ast.CallExpr]bool{}
		c.checkImports(f)
		c.checkGlobals(f)
		ast.Inspect(f, c.visit)
	}
	return nil, nil
}

func orderMarkers(tf *token.File, f *ast.File) map[int]bool {
	m := map[int]bool{}
	for _, g := range f.Comments {
		for _, cm := range g.List {
			rest, ok := strings.CutPrefix(cm.Text, OrderMarker)
			if ok && strings.TrimSpace(rest) != "" {
				m[tf.Line(cm.Slash)] = true
			}
		}
	}
	return m
}

func (c *checker) checkImports(f *ast.File) {
	for _, imp := range f.Imports {
		path := strings.Trim(imp.Path.Value, "\"`")
		if allowedImports[path] || path == ownPrefix || strings.HasPrefix(path, ownPrefix+"/") {
			continue
		}
		c.pass.Reportf(imp.Pos(), "import %q: the core imports only pure standard-library packages (errors, fmt, strings, strconv, bytes, slices, maps, cmp, sort, math, math/bits, encoding/binary, hash/crc32, unicode/utf8, container/heap, iter) and %s", path, ownPrefix)
	}
}

func (c *checker) visit(n ast.Node) bool {
	info := c.pass.TypesInfo
	switch n := n.(type) {
	case *ast.GoStmt:
		c.pass.Reportf(n.Pos(), "go statement: the core starts no goroutine")
	case *ast.SelectStmt:
		c.pass.Reportf(n.Pos(), "select statement: the core uses no channels")
	case *ast.ChanType:
		c.pass.Reportf(n.Pos(), "channel type: the core uses no channels")
		return false // a nested chan type is the same offence
	case *ast.SendStmt:
		c.pass.Reportf(n.Pos(), "channel send: the core uses no channels")
	case *ast.UnaryExpr:
		if n.Op == token.ARROW {
			c.pass.Reportf(n.Pos(), "channel receive: the core uses no channels")
		}
		if n.Op == token.AND {
			if v := c.globalRoot(n.X); v != nil {
				c.pass.Reportf(n.Pos(), "address of package-level variable %s: package-level variables are read-only", v.Name())
			}
		}
	case *ast.SliceExpr:
		if v := c.globalRoot(n.X); v != nil {
			if _, isArray := info.TypeOf(n.X).Underlying().(*types.Array); isArray {
				c.pass.Reportf(n.Pos(), "slice of package-level array %s: the slice would alias a read-only table", v.Name())
			}
		}
	case *ast.AssignStmt:
		if n.Tok != token.DEFINE {
			for _, lhs := range n.Lhs {
				c.checkWrite(lhs, "assignment to")
			}
		}
	case *ast.IncDecStmt:
		c.checkWrite(n.X, n.Tok.String()+" of")
	case *ast.RangeStmt:
		if n.Tok == token.ASSIGN {
			c.checkWrite(n.Key, "assignment to")
			c.checkWrite(n.Value, "assignment to")
		}
		switch info.TypeOf(n.X).Underlying().(type) {
		case *types.Chan:
			c.pass.Reportf(n.Pos(), "range over a channel: the core uses no channels")
		case *types.Map:
			c.needMarker(n.Pos(), "range over a map")
		}
	case *ast.CallExpr:
		c.visitCall(n)
	case *ast.SelectorExpr:
		if obj := c.qualified(n); obj != nil && obj.Pkg().Path() == "fmt" && !allowedFmt[obj.Name()] {
			c.pass.Reportf(n.Pos(), "fmt.%s: of fmt the core may use only Sprintf and Errorf", obj.Name())
		}
	}
	return true
}

func (c *checker) visitCall(n *ast.CallExpr) {
	if id, ok := ast.Unparen(n.Fun).(*ast.Ident); ok {
		if b, ok := c.pass.TypesInfo.Uses[id].(*types.Builtin); ok && b.Name() == "close" {
			c.pass.Reportf(n.Pos(), "close of a channel: the core uses no channels")
		}
	}
	sel, ok := ast.Unparen(n.Fun).(*ast.SelectorExpr)
	if !ok {
		return
	}
	fn := c.pkgFunc(sel)
	if fn == nil {
		return
	}
	switch fn.Pkg().Path() + "." + fn.Name() {
	case "slices.Sorted", "slices.SortedFunc", "slices.SortedStableFunc":
		if len(n.Args) > 0 {
			if arg, ok := ast.Unparen(n.Args[0]).(*ast.CallExpr); ok {
				c.sortedArgs[arg] = true
			}
		}
	case "maps.Keys", "maps.Values", "maps.All":
		if !c.sortedArgs[n] {
			c.needMarker(n.Pos(), "maps."+fn.Name()+" (map iteration order)")
		}
	}
}

func (c *checker) needMarker(pos token.Pos, what string) {
	line := c.file.Line(pos)
	if c.markers[line] || c.markers[line-1] {
		return
	}
	c.pass.Reportf(pos, "%s without an order marker: sort the keys, or say on this line or the line above why order cannot reach an output (%s <why>)", what, OrderMarker)
}

// qualified is the object a qualified identifier (pkg.Name) denotes, or nil.
func (c *checker) qualified(sel *ast.SelectorExpr) types.Object {
	id, ok := sel.X.(*ast.Ident)
	if !ok {
		return nil
	}
	if _, ok := c.pass.TypesInfo.Uses[id].(*types.PkgName); !ok {
		return nil
	}
	return c.pass.TypesInfo.Uses[sel.Sel]
}

// pkgFunc is the package-level function a qualified selector (pkg.F) names.
func (c *checker) pkgFunc(sel *ast.SelectorExpr) *types.Func {
	fn, _ := c.qualified(sel).(*types.Func)
	return fn
}

func (c *checker) checkWrite(e ast.Expr, what string) {
	if e == nil {
		return
	}
	if v := c.globalRoot(e); v != nil {
		c.pass.Reportf(e.Pos(), "%s package-level variable %s: package-level variables are read-only", what, v.Name())
	}
}

// globalRoot is the package-level variable that e denotes or is an element
// or field of (through arrays and struct values, not through pointers, slices
// or maps, whose targets are not the variable itself).
func (c *checker) globalRoot(e ast.Expr) *types.Var {
	info := c.pass.TypesInfo
	for {
		switch x := e.(type) {
		case *ast.ParenExpr:
			e = x.X
		case *ast.IndexExpr:
			if _, ok := info.TypeOf(x.X).Underlying().(*types.Array); !ok {
				return nil
			}
			e = x.X
		case *ast.SelectorExpr:
			if s := info.Selections[x]; s != nil {
				if s.Kind() != types.FieldVal || s.Indirect() {
					return nil
				}
				e = x.X
				continue
			}
			return packageVar(info.Uses[x.Sel])
		case *ast.Ident:
			return packageVar(info.Uses[x])
		default:
			return nil
		}
	}
}

func packageVar(obj types.Object) *types.Var {
	v, ok := obj.(*types.Var)
	if !ok || v.Pkg() == nil || v.Parent() != v.Pkg().Scope() {
		return nil
	}
	return v
}

// checkGlobals reports package-level variables other than error sentinels and
// constant lookup tables.
func (c *checker) checkGlobals(f *ast.File) {
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.VAR {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if name.Name == "_" {
					continue // a compile-time assertion; nothing can read or write it
				}
				var init ast.Expr
				if len(vs.Values) == len(vs.Names) {
					init = vs.Values[i]
				}
				obj := c.pass.TypesInfo.Defs[name]
				if obj == nil || c.isSentinel(obj, init) || c.isTable(obj, init) {
					continue
				}
				c.pass.Reportf(name.Pos(), "package-level variable %s: the core keeps no mutable global state; allowed are error sentinels (errors.New or fmt.Errorf) and arrays of constants; make it a constant, a function or a field", name.Name)
			}
		}
	}
}

func (c *checker) isSentinel(obj types.Object, init ast.Expr) bool {
	if !types.Identical(obj.Type(), types.Universe.Lookup("error").Type()) {
		return false
	}
	call, ok := init.(*ast.CallExpr)
	if !ok {
		return false
	}
	sel, ok := ast.Unparen(call.Fun).(*ast.SelectorExpr)
	if !ok {
		return false
	}
	fn := c.pkgFunc(sel)
	if fn == nil {
		return false
	}
	name := fn.Pkg().Path() + "." + fn.Name()
	return name == "errors.New" || name == "fmt.Errorf"
}

func (c *checker) isTable(obj types.Object, init ast.Expr) bool {
	arr, ok := obj.Type().Underlying().(*types.Array)
	if !ok {
		return false
	}
	if _, ok := arr.Elem().Underlying().(*types.Basic); !ok {
		return false
	}
	lit, ok := init.(*ast.CompositeLit)
	if !ok {
		return false
	}
	for _, elt := range lit.Elts {
		if kv, ok := elt.(*ast.KeyValueExpr); ok {
			elt = kv.Value
		}
		if tv, ok := c.pass.TypesInfo.Types[elt]; !ok || tv.Value == nil {
			return false
		}
	}
	return true
}
