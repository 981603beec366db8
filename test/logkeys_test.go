package test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// replacedLogKeys are the spellings CONTRIBUTING.md ("Log attributes")
// replaced, with the key to use instead.
var replacedLogKeys = map[string]string{
	"error": "err", "cause": "err",
	"remote": "peer", "addr": "peer (remote end) or address (own)", "peer_host": "peer", "remote_addr": "peer",
	"retry_in": "retry-in", "file": "path", "job_id": "job", "job-id": "job",
}

// A log key is kebab-case, or a dotted configuration key.
var logKeyRE = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*(\.[a-z0-9]+(-[a-z0-9]+)*)*$`)

// TestLogAttributeKeys reads every slog call in the code base and holds its
// attribute keys to the one set CONTRIBUTING.md lists: kebab-case, and none
// of the spellings it replaced.
func TestLogAttributeKeys(t *testing.T) {
	root := repoRoot(t)
	fset := token.NewFileSet()
	checked := 0
	for _, dir := range []string{"cmd", "internal"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") || strings.HasSuffix(p, ".pb.go") {
				return err
			}
			f, err := parser.ParseFile(fset, p, nil, 0)
			if err != nil {
				return err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				for _, k := range logKeys(n) {
					checked++
					key, _ := strconv.Unquote(k.Value)
					pos := fset.Position(k.Pos())
					if use, ok := replacedLogKeys[key]; ok {
						t.Errorf("%s:%d: log key %q: use %s (CONTRIBUTING.md, Log attributes)", pos.Filename, pos.Line, key, use)
					} else if !logKeyRE.MatchString(key) {
						t.Errorf("%s:%d: log key %q is not kebab-case (CONTRIBUTING.md, Log attributes)", pos.Filename, pos.Line, key)
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if checked < 100 {
		t.Fatalf("found only %d log keys: the scan no longer recognises slog calls", checked)
	}
}

// logKeys returns the literal attribute keys of n if it is a slog call:
// logger.Info/Warn/Error/Debug(msg, k, v, ...), logger.With(k, v, ...),
// the *Context forms, and slog.String("k", ...) and its kin.
func logKeys(n ast.Node) []*ast.BasicLit {
	c, ok := n.(*ast.CallExpr)
	if !ok {
		return nil
	}
	sel, ok := c.Fun.(*ast.SelectorExpr)
	if !ok {
		return nil
	}
	first := -1
	switch sel.Sel.Name {
	case "Info", "Warn", "Error", "Debug":
		first = 1
	case "With":
		first = 0
	case "InfoContext", "WarnContext", "ErrorContext", "DebugContext":
		first = 2
	case "String", "Any", "Int", "Int64", "Bool", "Duration", "Time", "Group":
		if x, ok := sel.X.(*ast.Ident); ok && x.Name == "slog" && len(c.Args) > 0 {
			if k, ok := c.Args[0].(*ast.BasicLit); ok && k.Kind == token.STRING {
				return []*ast.BasicLit{k}
			}
		}
		return nil
	default:
		return nil
	}
	// Error/Info/... on something other than a logger (t.Error, a
	// strings.Builder) has no message-then-pairs shape: require that the
	// message, when there is one, is followed by an even number of args.
	if first > 0 && (len(c.Args)-first)%2 != 0 {
		return nil
	}
	var out []*ast.BasicLit
	for i := first; i < len(c.Args); i += 2 {
		k, ok := c.Args[i].(*ast.BasicLit)
		if !ok || k.Kind != token.STRING {
			break // a slog.Attr or a spread: its key is checked where it is built
		}
		out = append(out, k)
	}
	return out
}
