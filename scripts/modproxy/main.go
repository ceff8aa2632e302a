// Command modproxy writes a module proxy directory, in the layout that
// GOPROXY=file://DIR and `go mod download` read, from module source trees:
//
//	go run . -proxy DIR -version VERSION MODDIR...
//
// For each MODDIR (a directory holding a go.mod) it writes
// DIR/<escaped module path>/@v/list, VERSION.info, VERSION.mod and
// VERSION.zip. The zip is made by golang.org/x/mod/zip, the code the go
// command itself uses, so it has the file set, prefixes and limits of a
// published module (nested modules, vendor/ and VCS folders left out).
//
// The go.mod of each tree must have no replace directive: the go command
// ignores them in dependencies and refuses `go install pkg@version` for a
// module that has them. A require of another of the given modules is set
// to VERSION, in the tree (so the zip's go.mod and the .mod file agree):
// the given trees are meant to be a scratch copy, released together.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	modzip "golang.org/x/mod/zip"
)

func main() {
	proxy := flag.String("proxy", "", "proxy directory to write")
	version := flag.String("version", "", "version to publish every module at")
	flag.Parse()
	if *proxy == "" || *version == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: modproxy -proxy DIR -version VERSION MODDIR...")
		os.Exit(2)
	}
	if err := run(*proxy, *version, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "modproxy:", err)
		os.Exit(1)
	}
}

type mod struct {
	dir  string
	file *modfile.File
}

func run(proxy, version string, dirs []string) error {
	if !semver.IsValid(version) || semver.Canonical(version) != version {
		return fmt.Errorf("version %q is not a canonical semantic version", version)
	}
	var mods []mod
	ours := map[string]bool{}
	for _, dir := range dirs {
		name := filepath.Join(dir, "go.mod")
		data, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		f, err := modfile.Parse(name, data, nil)
		if err != nil {
			return err
		}
		if f.Module == nil {
			return fmt.Errorf("%s: no module line", name)
		}
		if len(f.Replace) > 0 {
			r := f.Replace[0]
			return fmt.Errorf("%s:%d: replace %s: a published module's replace directives are ignored by its users and make `go install pkg@version` fail", name, r.Syntax.Start.Line, r.Old.Path)
		}
		if err := module.CheckPath(f.Module.Mod.Path); err != nil {
			return err
		}
		mods = append(mods, mod{dir, f})
		ours[f.Module.Mod.Path] = true
	}
	info, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, time.Now().UTC().Truncate(time.Second)})
	if err != nil {
		return err
	}
	for _, m := range mods {
		path := m.file.Module.Mod.Path
		for _, r := range m.file.Require {
			if ours[r.Mod.Path] && r.Mod.Version != version {
				if err := m.file.AddRequire(r.Mod.Path, version); err != nil {
					return err
				}
			}
		}
		m.file.Cleanup()
		gomod, err := m.file.Format()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(m.dir, "go.mod"), gomod, 0o644); err != nil {
			return err
		}
		esc, err := module.EscapePath(path)
		if err != nil {
			return err
		}
		escv, err := module.EscapeVersion(version)
		if err != nil {
			return err
		}
		at := filepath.Join(proxy, filepath.FromSlash(esc), "@v")
		if err := os.MkdirAll(at, 0o755); err != nil {
			return err
		}
		base := filepath.Join(at, escv)
		if err := os.WriteFile(base+".info", info, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(base+".mod", gomod, 0o644); err != nil {
			return err
		}
		if err := writeZip(base+".zip", module.Version{Path: path, Version: version}, m.dir); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := os.WriteFile(filepath.Join(at, "list"), []byte(version+"\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func writeZip(name string, v module.Version, dir string) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := modzip.CreateFromDir(f, v, dir); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
