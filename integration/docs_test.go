package integration_test

// TestDocSnippetsCompile holds the documentation to the code: every ```go
// block of the README and of docs/ must compile against the credpool of this
// workspace and the SDK versions this module requires.

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// snippet is one ```go block of a Markdown file.
type snippet struct {
	doc  string   // absolute path of the Markdown file
	line int      // line of the block's first line of code, 1-based
	code []string // the block's lines, fence indentation removed
}

// fragmentImports are the packages a fragment may use without importing
// them; each file refers to every one, so none is ever unused. A fragment
// imports anything else itself, in import lines at its top.
var fragmentImports = map[string]string{
	"context":                      "context.Background",
	"errors":                       "errors.Is",
	"fmt":                          "fmt.Println",
	"io":                           "io.EOF",
	"log":                          "log.Fatal",
	"log/slog":                     "slog.Default",
	"net/http":                     "http.DefaultClient",
	"os":                           "os.Exit",
	"time":                         "time.Second",
	"github.com/credpool/credpool": "credpool.New",
}

// TestDocSnippetsCompile compiles every ```go block of ../README.md and
// ../docs/*.md. A block that starts with "package" is a file and compiles as
// it is, in a package of its own. Any other block is a fragment: statements,
// after optional import lines, that become the body of a function, in a file
// that imports the packages of fragmentImports besides its own; the
// variables it declares at its top level are marked used, since a reader's
// program would go on to use them. The fragments of one Markdown file share a
// package, one file each. //line directives make every compiler error name
// the Markdown file and line.
//
// The packages are written to a temporary directory inside this module, so
// that its requirements (the SDKs) and the workspace's modules (credpool,
// credpoolprom, redisstore) resolve, and removed afterwards (or, after a run
// killed first, by a later run). Its name starts with "_", so ./... patterns
// run meanwhile do not match it, and its files are gofmt-formatted, so gofmt
// -l does not list them. go vet checks them all in one run of a second or
// two, naming the first error of each Markdown file.
func TestDocSnippetsCompile(t *testing.T) {
	docs, err := filepath.Glob(filepath.Join("..", "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs = append([]string{filepath.Join("..", "README.md")}, docs...)

	removeStale(t)
	tmp, err := os.MkdirTemp(".", snippetDirPrefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })

	total := 0
	dirs := map[string]bool{} // the packages to check
	for i, doc := range docs {
		abs, err := filepath.Abs(doc)
		if err != nil {
			t.Fatal(err)
		}
		snippets, err := readSnippets(abs)
		if err != nil {
			t.Fatal(err)
		}
		total += len(snippets)
		for _, s := range snippets {
			var dir, file, src string
			if isFile(s.code) {
				dir = filepath.Join(tmp, fmt.Sprintf("d%d_l%d", i, s.line))
				file = "main.go"
				src = fmt.Sprintf("//line %s:%d\n%s\n", s.doc, s.line, strings.Join(s.code, "\n"))
			} else {
				dir = filepath.Join(tmp, fmt.Sprintf("d%d", i))
				file = fmt.Sprintf("l%d.go", s.line)
				src = fragmentFile(s)
			}
			dirs[dir] = true
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			// Formatted, //line directives kept, so that gofmt -l passes
			// while the test runs, or over what a killed run left. A
			// snippet that does not parse is written as it is: go vet
			// then says where.
			if formatted, err := format.Source([]byte(src)); err == nil {
				src = string(formatted)
			}
			if err := os.WriteFile(filepath.Join(dir, file), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("%s: %d Go snippets", strings.TrimPrefix(filepath.ToSlash(doc), "../"), len(snippets))
	}
	if total == 0 {
		t.Fatal("no ```go block found in the README or docs/: the extraction is broken")
	}

	// go vet type-checks the snippets, as the compiler does, and runs its
	// analyzers over them (a lost cancel, a bad Printf). It needs no object
	// code of the snippets themselves, which keeps the test fast. It names
	// the first error of each package.
	var pkgs []string
	for dir := range dirs {
		pkgs = append(pkgs, "./"+filepath.ToSlash(dir))
	}
	start := time.Now()
	out, err := exec.Command("go", append([]string{"vet"}, pkgs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%d snippets checked; go vet failed (%v):\n%s", total, err, relative(string(out)))
	}
	t.Logf("go vet of %d packages: %s", len(pkgs), time.Since(start).Round(time.Millisecond))
	t.Logf("%d snippets compile", total)
}

// snippetDirPrefix starts the name of the temporary directory of the
// snippets' packages. A leading "_" keeps ./... patterns from matching it.
const snippetDirPrefix = "_docsnippets-"

// removeStale removes the snippet directories that a run killed before its
// cleanup left behind, once they are an hour old: a younger one may belong
// to a run in progress.
func removeStale(t *testing.T) {
	stale, _ := filepath.Glob(snippetDirPrefix + "*")
	for _, dir := range stale {
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() && time.Since(fi.ModTime()) > time.Hour {
			t.Logf("removing %s, left by an earlier run", dir)
			os.RemoveAll(dir)
		}
	}
}

// relative shortens the absolute paths of the repository in go vet's output
// to paths relative to the repository root.
func relative(out string) string {
	root, err := filepath.Abs("..")
	if err != nil {
		return out
	}
	return strings.ReplaceAll(out, root+string(filepath.Separator), "")
}

// readSnippets returns the ```go blocks of the Markdown file at path.
func readSnippets(path string) ([]snippet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		out    []snippet
		cur    *snippet
		indent string
		n      int
	)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimLeft(line, " \t")
		switch {
		case cur == nil && strings.TrimSpace(trimmed) == "```go":
			cur = &snippet{doc: path, line: n + 1}
			indent = line[:len(line)-len(trimmed)]
		case cur != nil && strings.HasPrefix(trimmed, "```"):
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.code = append(cur.code, strings.TrimPrefix(line, indent))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: a ```go block is never closed", path, cur.line-1)
	}
	return out, nil
}

// isFile reports whether code is a whole Go file: its first line that is not
// blank or a comment is a package clause.
func isFile(code []string) bool {
	for _, l := range code {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "//") {
			continue
		}
		return strings.HasPrefix(l, "package ")
	}
	return false
}

// fragmentFile returns the Go file of a fragment: its imports with those of
// fragmentImports, and its statements as the body of a function.
func fragmentFile(s snippet) string {
	// The fragment's own imports: import lines, single or grouped, before
	// its first statement.
	type spec struct {
		line int
		text string // e.g. `"net/http"` or `openai "github.com/sashabaranov/go-openai"`
	}
	var specs []spec
	body, inGroup := len(s.code), false
scan:
	for i, l := range s.code {
		t := strings.TrimSpace(l)
		switch {
		case inGroup && t == ")":
			inGroup = false
		case t == "" || strings.HasPrefix(t, "//"):
		case inGroup:
			specs = append(specs, spec{s.line + i, t})
		case t == "import (":
			inGroup = true
		case strings.HasPrefix(t, "import "):
			specs = append(specs, spec{s.line + i, strings.TrimSpace(strings.TrimPrefix(t, "import "))})
		default:
			body = i
			break scan
		}
	}

	var b strings.Builder
	b.WriteString("package snippets\n\n")
	own := map[string]bool{}
	for _, sp := range specs {
		fields := strings.Fields(sp.text)
		own[strings.Trim(fields[len(fields)-1], `"`)] = true
		fmt.Fprintf(&b, "//line %s:%d\nimport %s\n\n", s.doc, sp.line, sp.text)
	}
	var fixed []string
	for path := range fragmentImports {
		if !own[path] {
			fixed = append(fixed, path)
		}
	}
	sort.Strings(fixed)
	b.WriteString("import (\n")
	for _, path := range fixed {
		fmt.Fprintf(&b, "\t%q\n", path)
	}
	b.WriteString(")\n\n")
	for _, path := range fixed {
		fmt.Fprintf(&b, "var _ = %s\n", fragmentImports[path])
	}
	// A //line directive before the first statement, and again after each
	// run of blank lines, which gofmt may shorten.
	fmt.Fprintf(&b, "\nfunc snippet%d() {\n", s.line)
	for i, l := range s.code[body:] {
		if strings.TrimSpace(l) != "" && (i == 0 || strings.TrimSpace(s.code[body+i-1]) == "") {
			fmt.Fprintf(&b, "//line %s:%d\n", s.doc, s.line+body+i)
		}
		b.WriteString(l + "\n")
	}
	stmts := strings.Join(s.code[body:], "\n")
	for _, name := range declared(stmts) {
		fmt.Fprintf(&b, "\t_ = %s\n", name)
	}
	b.WriteString("}\n")
	return b.String()
}

// declared returns the variables that statements declare at their top level,
// so that the function they become the body of can use them. Statements that
// do not parse declare nothing: the compiler says what is wrong with them.
func declared(stmts string) []string {
	f, err := parser.ParseFile(token.NewFileSet(), "", "package p\nfunc f() {\n"+stmts+"\n}\n", parser.SkipObjectResolution)
	if err != nil {
		return nil
	}
	var names []string
	seen := map[string]bool{"_": true}
	add := func(id *ast.Ident) {
		if !seen[id.Name] {
			seen[id.Name] = true
			names = append(names, id.Name)
		}
	}
	for _, st := range f.Decls[0].(*ast.FuncDecl).Body.List {
		switch st := st.(type) {
		case *ast.AssignStmt:
			if st.Tok == token.DEFINE {
				for _, e := range st.Lhs {
					if id, ok := e.(*ast.Ident); ok {
						add(id)
					}
				}
			}
		case *ast.DeclStmt:
			if g, ok := st.Decl.(*ast.GenDecl); ok && g.Tok == token.VAR {
				for _, sp := range g.Specs {
					for _, id := range sp.(*ast.ValueSpec).Names {
						add(id)
					}
				}
			}
		}
	}
	return names
}
