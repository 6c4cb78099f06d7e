//go:build dist

package pkgtest_test

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/hbmesh/hbmesh/internal/natstest"
)

// TestInstalledFilesTable keeps docs/DEPLOY.md's "Installed files" table
// true: every file that the .deb, the .rpm or this machine's archive
// holds is named in its column, by its path, a directory above it or (in
// an archive) a pattern, and everything the table names is there.
func TestInstalledFilesTable(t *testing.T) {
	dpkgDeb := natstest.SystemTool(t, "dpkg", "", "dpkg-deb")
	rpm := natstest.SystemTool(t, "rpm", "", "rpm")
	r := loadRelease(t)
	pkgs := map[string]map[string]entry{
		"deb": debListing(t, dpkgDeb, filepath.Join(root, r.find(t, "Linux Package", "deb", "linux", runtime.GOARCH).Path)),
		"rpm": rpmListing(t, rpm, filepath.Join(root, r.find(t, "Linux Package", "rpm", "linux", runtime.GOARCH).Path)),
	}
	a := r.find(t, "Archive", "tar.gz", "linux", runtime.GOARCH)
	dir := strings.TrimSuffix(filepath.Base(a.Path), ".tar.gz") + "/"
	var archive []string
	for name := range readTarGz(t, filepath.Join(root, a.Path)) {
		archive = append(archive, strings.TrimPrefix(name, dir))
	}
	pkgNames, archiveNames := installedFilesTable(t)

	for _, n := range pkgNames {
		_, inDeb := pkgs["deb"][strings.TrimSuffix(n, "/")]
		_, inRPM := pkgs["rpm"][strings.TrimSuffix(n, "/")]
		if !inDeb && !inRPM {
			t.Errorf("DEPLOY.md names %s, which neither package installs", n)
		}
	}
	for format, listing := range pkgs {
		for p, e := range listing {
			if !strings.HasPrefix(e.mode, "d") && !named(p, pkgNames) {
				t.Errorf("the %s installs %s, which DEPLOY.md does not name", format, p)
			}
		}
	}
	for _, n := range archiveNames {
		if !slices.ContainsFunc(archive, func(p string) bool { return named(p, []string{n}) }) {
			t.Errorf("DEPLOY.md names %s, which %s lacks", n, a.Path)
		}
	}
	for _, p := range archive {
		if !named(p, archiveNames) {
			t.Errorf("%s holds %s, which DEPLOY.md does not name", a.Path, p)
		}
	}
}

// installedFilesTable returns the paths named in the package and archive
// columns of docs/DEPLOY.md's "Installed files" table. In the package
// column a name without a slash is in the directory of the path before
// it (`/etc/default/hbmesh-node`, `hbmesh-monitor`). A name ending in a
// slash is a directory and all below it.
func installedFilesTable(t *testing.T) (pkg, archive []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docs/DEPLOY.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n### Installed files\n")
	if !ok {
		t.Fatal(`docs/DEPLOY.md has no "### Installed files"`)
	}
	code := regexp.MustCompile("`([^`]+)`")
	for _, line := range strings.Split(section, "\n") {
		if strings.HasPrefix(line, "#") {
			break
		}
		cells := strings.Split(line, "|")
		if len(cells) != 5 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		last := ""
		for _, m := range code.FindAllStringSubmatch(cells[1], -1) {
			if !strings.HasPrefix(m[1], "/") {
				m[1] = path.Join(path.Dir(last), m[1])
			}
			last = m[1]
			pkg = append(pkg, m[1])
		}
		for _, m := range code.FindAllStringSubmatch(cells[2], -1) {
			archive = append(archive, m[1])
		}
	}
	if len(pkg) < 10 || len(archive) < 10 {
		t.Fatalf("docs/DEPLOY.md's Installed files table names %d package and %d archive paths; the pattern no longer matches it", len(pkg), len(archive))
	}
	return pkg, archive
}

// named reports whether one of names is p, a directory above it or a
// pattern p matches.
func named(p string, names []string) bool {
	for _, n := range names {
		if ok, _ := path.Match(n, p); ok || (strings.HasSuffix(n, "/") && strings.HasPrefix(p, n)) {
			return true
		}
	}
	return false
}
