//go:build dist

package pkgtest_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"debug/macho"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/hbmesh/hbmesh/internal/doclinks"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/internal/promtest"
)

// root is the repository, where dist/ and the packaged sources are.
const root = "../.."

// platforms are the release's operating systems and architectures.
var platforms = []struct{ goos, goarch string }{
	{"linux", "amd64"}, {"linux", "arm64"}, {"darwin", "amd64"}, {"darwin", "arm64"},
}

// pkgFile is a file or directory a package installs, with its mode and
// owner. src is the repository file it must equal byte for byte, if any;
// packager limits it to one package format.
type pkgFile struct {
	path, mode, owner, group, src, packager string
}

// packaged is every file and directory the packages install that a user
// or operator relies on, besides the documentation (docs).
var packaged = []pkgFile{
	{path: "/usr/bin/hbmesh", mode: "-rwxr-xr-x", owner: "root", group: "root"},
	{path: "/usr/lib/systemd/system/hbmesh-node.service", mode: "-rw-r--r--", owner: "root", group: "root", src: "deploy/systemd/hbmesh-node.service"},
	{path: "/usr/lib/systemd/system/hbmesh-monitor.service", mode: "-rw-r--r--", owner: "root", group: "root", src: "deploy/systemd/hbmesh-monitor.service"},
	{path: "/usr/lib/systemd/system/hbmesh-notify.service", mode: "-rw-r--r--", owner: "root", group: "root", src: "deploy/systemd/hbmesh-notify.service"},
	// Read by systemd as root; they may hold a password.
	{path: "/etc/default/hbmesh-node", mode: "-rw-------", owner: "root", group: "root", src: "deploy/systemd/hbmesh-node.env"},
	{path: "/etc/default/hbmesh-monitor", mode: "-rw-------", owner: "root", group: "root", src: "deploy/systemd/hbmesh-monitor.env"},
	{path: "/etc/default/hbmesh-notify", mode: "-rw-------", owner: "root", group: "root", src: "deploy/systemd/hbmesh-notify.env"},
	// Credentials, readable by the services' group only.
	{path: "/etc/hbmesh", mode: "drwxr-x---", owner: "root", group: "hbmesh"},
	{path: "/var/lib/hbmesh", mode: "drwxr-x---", owner: "hbmesh", group: "hbmesh"},
	{path: "/usr/share/man/man1/hbmesh.1.gz", mode: "-rw-r--r--", owner: "root", group: "root"},
	{path: "/usr/share/bash-completion/completions/hbmesh", mode: "-rw-r--r--", owner: "root", group: "root"},
	{path: "/usr/share/zsh/vendor-completions/_hbmesh", mode: "-rw-r--r--", owner: "root", group: "root", packager: "deb"},
	{path: "/usr/share/zsh/site-functions/_hbmesh", mode: "-rw-r--r--", owner: "root", group: "root", packager: "rpm"},
	{path: "/usr/share/fish/vendor_completions.d/hbmesh.fish", mode: "-rw-r--r--", owner: "root", group: "root"},
	{path: "/usr/share/doc/hbmesh/copyright", mode: "-rw-r--r--", owner: "root", group: "root", src: "LICENSE", packager: "deb"},
	{path: "/usr/share/licenses/hbmesh/LICENSE", mode: "-rw-r--r--", owner: "root", group: "root", src: "LICENSE", packager: "rpm"},
}

// docs are the documentation and examples a release ships, as patterns
// of repository paths: the pages, the alert rules with their promtool
// tests and a Prometheus configuration, the Alertmanager route, the
// Grafana dashboard and the nats-server auth templates. The packages
// install each file at its repository path under docDir, and each archive
// holds it at that path in its directory, so the pages' relative links
// resolve in both.
var docs = []string{
	"README.md", "CHANGELOG.md", "docs/*.md",
	"deploy/prometheus/*.yml", "deploy/alertmanager/*.yml",
	"deploy/grafana/*.json", "deploy/auth/*.conf",
}

// docDir is where the packages install docs.
const docDir = "/usr/share/doc/hbmesh"

// docFiles returns the repository paths that docs matches. A pattern
// that matches nothing fails the test: the file it was for is gone.
func docFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, pat := range docs {
		m, err := filepath.Glob(filepath.Join(root, pat))
		if err != nil {
			t.Fatal(err)
		}
		if len(m) == 0 {
			t.Fatalf("no repository file matches %s", pat)
		}
		for _, p := range m {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, filepath.ToSlash(rel))
		}
	}
	return out
}

// packagedFiles is packaged and the documentation, each file at docDir
// plus its repository path, the same bytes, mode 0644.
func packagedFiles(t *testing.T) []pkgFile {
	t.Helper()
	all := slices.Clone(packaged)
	for _, d := range docFiles(t) {
		all = append(all, pkgFile{path: docDir + "/" + d, mode: "-rw-r--r--", owner: "root", group: "root", src: d})
	}
	return all
}

// conffiles are the files a package marks as configuration, kept with the
// operator's edits on upgrade: the /etc files of packaged, and no others.
func conffiles() []string {
	var out []string
	for _, p := range packaged {
		if strings.HasPrefix(p.path, "/etc/") && strings.HasPrefix(p.mode, "-") {
			out = append(out, p.path)
		}
	}
	return out
}

// scripts are the maintainer scripts, by their deb file and rpm tag names.
var scripts = []struct{ src, deb, rpm string }{
	{"deploy/package/preinstall.sh", "preinst", "PREIN"},
	{"deploy/package/postinstall.sh", "postinst", "POSTIN"},
	{"deploy/package/preremove.sh", "prerm", "PREUN"},
	{"deploy/package/postremove.sh", "postrm", "POSTUN"},
}

// artifact is one entry of dist/artifacts.json.
type artifact struct {
	Name   string         `json:"name"`
	Path   string         `json:"path"`
	Type   string         `json:"type"`
	Goos   string         `json:"goos"`
	Goarch string         `json:"goarch"`
	Extra  map[string]any `json:"extra"`
}

func (a artifact) format() string { s, _ := a.Extra["Format"].(string); return s }

// metadata is dist/metadata.json.
type metadata struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
}

// release is what `make dist` left in dist/.
type release struct {
	meta      metadata
	artifacts []artifact
}

func loadRelease(t *testing.T) release {
	t.Helper()
	var r release
	for name, v := range map[string]any{"metadata.json": &r.meta, "artifacts.json": &r.artifacts} {
		b, err := os.ReadFile(filepath.Join(root, "dist", name))
		if err != nil {
			t.Fatalf("%v: run `make dist` first", err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("dist/%s: %v", name, err)
		}
	}
	return r
}

// find returns the artifact of type typ and format for the platform.
func (r release) find(t *testing.T, typ, format, goos, goarch string) artifact {
	t.Helper()
	var found []artifact
	for _, a := range r.artifacts {
		if a.Type == typ && a.format() == format && a.Goos == goos && a.Goarch == goarch {
			found = append(found, a)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %s %s for %s/%s in dist/artifacts.json, found %d", typ, format, goos, goarch, len(found))
	}
	return found[0]
}

func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out)
}

// TestChecksums: checksums.txt lists every archive and package, each with
// its SHA-256, and the release has an archive for every platform and a
// .deb and .rpm for each Linux one.
func TestChecksums(t *testing.T) {
	r := loadRelease(t)
	b, err := os.ReadFile(filepath.Join(root, "dist", "checksums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("checksums.txt: bad line %q", line)
		}
		sums[name] = sum
	}
	var want []string
	for _, p := range platforms {
		want = append(want, r.find(t, "Archive", "tar.gz", p.goos, p.goarch).Path)
		if p.goos == "linux" {
			want = append(want, r.find(t, "Linux Package", "deb", p.goos, p.goarch).Path)
			want = append(want, r.find(t, "Linux Package", "rpm", p.goos, p.goarch).Path)
		}
	}
	for _, path := range want {
		f, err := os.Open(filepath.Join(root, path))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); sums[filepath.Base(path)] != got {
			t.Errorf("%s: checksums.txt has %q, the file's SHA-256 is %s", path, sums[filepath.Base(path)], got)
		}
	}
	if len(sums) != len(want) {
		t.Errorf("checksums.txt lists %d files, want the %d archives and packages", len(sums), len(want))
	}
}

// TestArchives: each archive holds, in one directory, a binary for its
// platform (static on Linux), the license, the units and environment
// files, the man page, the completions and the documentation (docs),
// each document the repository's, its links resolving inside the
// archive, and nothing else.
func TestArchives(t *testing.T) {
	r := loadRelease(t)
	for _, p := range platforms {
		t.Run(p.goos+"_"+p.goarch, func(t *testing.T) {
			a := r.find(t, "Archive", "tar.gz", p.goos, p.goarch)
			files := readTarGz(t, filepath.Join(root, a.Path))
			dir := strings.TrimSuffix(filepath.Base(a.Path), ".tar.gz") + "/"
			tree := fstest.MapFS{}
			for name, f := range files {
				rel, ok := strings.CutPrefix(name, dir)
				if !ok {
					t.Errorf("%s: %s is outside %s", a.Path, name, dir)
					continue
				}
				tree[rel] = &fstest.MapFile{Data: f.data, Mode: f.mode}
			}
			checkDocTree(t, a.Path, tree, []string{
				"hbmesh", "LICENSE",
				"systemd/hbmesh-node.service", "systemd/hbmesh-monitor.service",
				"systemd/hbmesh-notify.service",
				"systemd/hbmesh-node.env", "systemd/hbmesh-monitor.env", "systemd/hbmesh-notify.env",
				"man/hbmesh.1.gz",
				"completions/hbmesh.bash", "completions/hbmesh.zsh", "completions/hbmesh.fish",
			})
			sameBytes(t, a.Path+": LICENSE", tree["LICENSE"].Data, "LICENSE")
			bin := files[dir+"hbmesh"]
			if bin.mode&0o111 == 0 {
				t.Errorf("%shbmesh is not executable: mode %v", dir, bin.mode)
			}
			checkBinary(t, bin.data, p.goos, p.goarch)
		})
	}
}

// checkDocTree checks a shipped tree, what names it: it holds every file
// of docs, each the same bytes as in the repository, the files others
// and nothing else, and every relative link of its Markdown pages
// resolves inside it.
func checkDocTree(t *testing.T, what string, tree fs.FS, others []string) {
	t.Helper()
	want := map[string]bool{}
	for _, d := range docFiles(t) {
		want[d] = true
		b, err := fs.ReadFile(tree, d)
		if err != nil {
			t.Errorf("%s: no %s", what, d)
			continue
		}
		sameBytes(t, what+": "+d, b, d)
	}
	for _, o := range others {
		if _, err := fs.Stat(tree, o); err != nil {
			t.Errorf("%s: no %s", what, o)
		}
		want[o] = true
	}
	err := fs.WalkDir(tree, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !want[p] {
			t.Errorf("%s: unexpected %s", what, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	pages, err := doclinks.Pages(tree)
	if err != nil {
		t.Fatal(err)
	}
	checked, errs := doclinks.Check(tree, pages, "")
	for _, err := range errs {
		t.Errorf("%s: %v", what, err)
	}
	if checked < 20 {
		t.Errorf("%s: checked only %d links", what, checked)
	}
}

type tarFile struct {
	mode os.FileMode
	data []byte
}

func readTarGz(t *testing.T, path string) map[string]tarFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	files := map[string]tarFile{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		files[h.Name] = tarFile{mode: h.FileInfo().Mode(), data: data}
	}
}

// checkBinary checks that data is an executable for goos/goarch and, on
// Linux, that it is static: no program interpreter, no shared libraries.
func checkBinary(t *testing.T, data []byte, goos, goarch string) {
	t.Helper()
	switch goos {
	case "linux":
		f, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("not an ELF file: %v", err)
		}
		want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[goarch]
		if f.Machine != want {
			t.Errorf("ELF machine %v, want %v", f.Machine, want)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Error("dynamically linked: has a program interpreter (CGO_ENABLED=0 missing?)")
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Errorf("needs shared libraries %v", libs)
		}
	case "darwin":
		f, err := macho.NewFile(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("not a Mach-O file: %v", err)
		}
		want := map[string]macho.Cpu{"amd64": macho.CpuAmd64, "arm64": macho.CpuArm64}[goarch]
		if f.Cpu != want {
			t.Errorf("Mach-O CPU %v, want %v", f.Cpu, want)
		}
	}
}

// entry is one file of a package listing.
type entry struct{ mode, owner, group string }

// debListing returns the files and directories of a .deb, by absolute
// path, with their modes and owners as dpkg will install them.
func debListing(t *testing.T, dpkgDeb, deb string) map[string]entry {
	t.Helper()
	listing := map[string]entry{}
	for _, line := range strings.Split(strings.TrimSpace(run(t, nil, dpkgDeb, "--contents", deb)), "\n") {
		// drwxr-x--- root/hbmesh 0 2026-01-01 00:00 ./etc/hbmesh/
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb --contents: bad line %q", line)
		}
		owner, group, _ := strings.Cut(f[1], "/")
		path := strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")
		listing[path] = entry{f[0], owner, group}
	}
	return listing
}

// rpmListing is debListing for an .rpm.
func rpmListing(t *testing.T, rpm, pkg string) map[string]entry {
	t.Helper()
	listing := map[string]entry{}
	out := run(t, nil, rpm, "-qp", "--qf", `[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILENAMES}\n]`, pkg)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 {
			t.Fatalf("rpm -qp: bad line %q", line)
		}
		listing[f[3]] = entry{f[0], f[1], f[2]}
	}
	return listing
}

// checkListing compares a package's listing with packagedFiles: each is
// there with its mode and owner, and docDir holds no other file.
func checkListing(t *testing.T, format string, got map[string]entry) {
	t.Helper()
	want := map[string]bool{}
	for _, p := range packagedFiles(t) {
		if p.packager != "" && p.packager != format {
			continue
		}
		want[p.path] = true
		e, ok := got[p.path]
		if !ok {
			t.Errorf("%s: no %s", format, p.path)
			continue
		}
		if want := (entry{p.mode, p.owner, p.group}); e != want {
			t.Errorf("%s: %s is %s %s:%s, want %s %s:%s", format, p.path, e.mode, e.owner, e.group, want.mode, want.owner, want.group)
		}
	}
	for path, e := range got {
		if strings.HasPrefix(path, docDir+"/") && !strings.HasPrefix(e.mode, "d") && !want[path] {
			t.Errorf("%s: unexpected %s", format, path)
		}
	}
}

// TestDeb unpacks the .deb for this machine with dpkg-deb and checks its
// files, its maintainer scripts, its binary, its man page and its units.
func TestDeb(t *testing.T) {
	dpkgDeb := natstest.SystemTool(t, "dpkg", "", "dpkg-deb")
	r := loadRelease(t)
	deb := filepath.Join(root, r.find(t, "Linux Package", "deb", "linux", runtime.GOARCH).Path)

	checkListing(t, "deb", debListing(t, dpkgDeb, deb))

	dir := t.TempDir()
	run(t, nil, dpkgDeb, "--extract", deb, dir)
	for _, p := range packaged { // and docs, in TestDebDocs
		if p.src == "" || (p.packager != "" && p.packager != "deb") {
			continue
		}
		sameFile(t, filepath.Join(dir, p.path), filepath.Join(root, p.src))
	}

	// Control: the environment files, and only they, are conffiles (an
	// upgrade keeps the operator's edits, and replaces the examples), and
	// the maintainer scripts are the repository's.
	control := t.TempDir()
	run(t, nil, dpkgDeb, "--control", deb, control)
	b, err := os.ReadFile(filepath.Join(control, "conffiles"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(b)); !sameSet(got, conffiles()) {
		t.Errorf("conffiles %q, want %q", got, conffiles())
	}
	for _, s := range scripts {
		sameFile(t, filepath.Join(control, s.deb), filepath.Join(root, s.src))
	}
	// The pre-install script's groupadd and useradd come from passwd, on
	// which a preinst may rely only as a Pre-Depends.
	ctl, err := os.ReadFile(filepath.Join(control, "control"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Split(string(ctl), "\n"), "Pre-Depends: passwd") {
		t.Errorf("control has no Pre-Depends: passwd, which the preinst's useradd needs:\n%s", ctl)
	}

	// The binary runs, and says which release it is.
	bin := filepath.Join(dir, "usr/bin/hbmesh")
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out := run(t, nil, bin, args...)
		for _, want := range []string{r.meta.Version, r.meta.Commit, runtime.GOOS + "/" + runtime.GOARCH} {
			if !strings.Contains(out, want) {
				t.Errorf("hbmesh %s printed %q, want it to name %q", args[0], out, want)
			}
		}
	}

	// The man page renders without a warning.
	man := natstest.SystemTool(t, "man-db", "", "man")
	var stderr bytes.Buffer
	cmd := exec.Command(man, "--warnings", "-l", filepath.Join(dir, "usr/share/man/man1/hbmesh.1.gz"))
	cmd.Env = append(os.Environ(), "MANPAGER=cat", "MANWIDTH=80", "MAN_KEEP_FORMATTING=")
	cmd.Stderr = &stderr
	page, err := cmd.Output()
	if err != nil || stderr.Len() > 0 || !bytes.Contains(page, []byte("hbmesh")) {
		t.Errorf("man -l hbmesh.1.gz: %v\nstderr: %s\npage starts: %.200s", err, stderr.Bytes(), page)
	}

	// Completions: each is for hbmesh, and zsh's is one that compinit
	// loads from vendor-completions by itself.
	for path, marker := range map[string]string{
		"usr/share/bash-completion/completions/hbmesh":    "hbmesh",
		"usr/share/zsh/vendor-completions/_hbmesh":        "#compdef hbmesh",
		"usr/share/fish/vendor_completions.d/hbmesh.fish": "complete -c hbmesh",
	} {
		b, err := os.ReadFile(filepath.Join(dir, path))
		if err != nil {
			t.Error(err)
			continue
		}
		if !bytes.Contains(b, []byte(marker)) {
			t.Errorf("%s lacks %q:\n%s", path, marker, b)
		}
	}

	// systemd-analyze verify, with the packaged binary (ExecStart points at
	// it, since /usr/bin/hbmesh is not installed here) and the packaged
	// man page (Documentation=man:hbmesh(1), found through MANPATH). verify
	// only warns about unknown keys, so any output fails.
	sa := natstest.SystemTool(t, "systemd", "", "systemd-analyze")
	units := t.TempDir()
	args := []string{"verify"}
	for _, name := range []string{"hbmesh-node.service", "hbmesh-monitor.service", "hbmesh-notify.service"} {
		b, err := os.ReadFile(filepath.Join(dir, "usr/lib/systemd/system", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte("\nExecStart=/usr/bin/hbmesh ")) {
			t.Fatalf("%s: ExecStart does not run /usr/bin/hbmesh", name)
		}
		b = bytes.ReplaceAll(b, []byte("/usr/bin/hbmesh"), []byte(bin))
		if err := os.WriteFile(filepath.Join(units, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, filepath.Join(units, name))
	}
	cmd = exec.Command(sa, args...)
	cmd.Env = append(os.Environ(), "MANPATH="+filepath.Join(dir, "usr/share/man"))
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestDebDocs checks the documentation the .deb installs in docDir, as
// unpacked by dpkg-deb: every file of docs and the copyright, each the
// repository's, nothing else, and every relative link of its pages
// resolving inside docDir. The examples work from there: promtool accepts
// the alert rules, passes their unit tests and loads the Prometheus
// configuration beside them, and amtool accepts the Alertmanager
// configuration.
func TestDebDocs(t *testing.T) {
	dpkgDeb := natstest.SystemTool(t, "dpkg", "", "dpkg-deb")
	r := loadRelease(t)
	deb := filepath.Join(root, r.find(t, "Linux Package", "deb", "linux", runtime.GOARCH).Path)
	dir := t.TempDir()
	run(t, nil, dpkgDeb, "--extract", deb, dir)
	doc := filepath.Join(dir, docDir)
	checkDocTree(t, "deb "+docDir, os.DirFS(doc), []string{"copyright"})

	for _, tc := range []struct {
		name string
		args []string
		want string // in the output on success
	}{
		{"check rules", []string{"check", "rules", "deploy/prometheus/hbmesh-alerts.yml"}, "SUCCESS"},
		{"test rules", []string{"test", "rules", "deploy/prometheus/hbmesh-alerts_test.yml"}, "SUCCESS"},
		{"check config", []string{"check", "config", "deploy/prometheus/prometheus.yml"}, "SUCCESS: 1 rule files found"},
	} {
		t.Run("promtool "+tc.name, func(t *testing.T) {
			args := slices.Clone(tc.args)
			args[2] = filepath.Join(doc, args[2])
			out, ok := promtest.Promtool(t, nil, args...)
			if !ok || !strings.Contains(out, tc.want) {
				t.Fatalf("promtool %s (exit 0: %v):\n%s", strings.Join(args, " "), ok, out)
			}
		})
	}
	t.Run("amtool check-config", func(t *testing.T) {
		out, ok := promtest.Amtool(t, "check-config", filepath.Join(doc, "deploy/alertmanager/alertmanager.yml"))
		if !ok || !strings.Contains(out, "SUCCESS") {
			t.Fatalf("amtool check-config (exit 0: %v):\n%s", ok, out)
		}
	})
}

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

// TestRPM reads the .rpm for this machine's architecture with rpm: its
// files, modes and owners, their bytes, its config files and its
// scriptlets.
func TestRPM(t *testing.T) {
	rpm := natstest.SystemTool(t, "rpm", "", "rpm")
	r := loadRelease(t)
	pkg := filepath.Join(root, r.find(t, "Linux Package", "rpm", "linux", runtime.GOARCH).Path)

	checkListing(t, "rpm", rpmListing(t, rpm, pkg))

	config := strings.Fields(run(t, nil, rpm, "-qp", "--configfiles", pkg))
	if !sameSet(config, conffiles()) {
		t.Errorf("rpm config files %q, want %q", config, conffiles())
	}

	// Each file from the repository has its bytes: rpm records a SHA-256
	// (digest algorithm 8) of every file.
	if algo := run(t, nil, rpm, "-qp", "--qf", "%{FILEDIGESTALGO}", pkg); algo != "8" {
		t.Fatalf("rpm file digest algorithm %q, want 8 (SHA-256)", algo)
	}
	digests := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(run(t, nil, rpm, "-qp", "--qf", `[%{FILENAMES} %{FILEDIGESTS}\n]`, pkg)), "\n") {
		name, sum, _ := strings.Cut(line, " ")
		digests[name] = sum
	}
	for _, p := range packagedFiles(t) {
		if p.src == "" || (p.packager != "" && p.packager != "rpm") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, p.src))
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := digests[p.path]; !ok {
			continue // checkListing said so
		} else if sum := sha256.Sum256(b); got != hex.EncodeToString(sum[:]) {
			t.Errorf("rpm: %s differs from %s (SHA-256 %q)", p.path, p.src, digests[p.path])
		}
	}

	// The %pre scriptlet's groupadd and useradd come from shadow-utils.
	if requires := strings.Fields(run(t, nil, rpm, "-qp", "--requires", pkg)); !slices.Contains(requires, "shadow-utils") {
		t.Errorf("rpm requires %q, want shadow-utils, which the %%pre scriptlet's useradd needs", requires)
	}

	// Each scriptlet is the repository's script, run by /bin/sh.
	for _, s := range scripts {
		got := run(t, nil, rpm, "-qp", "--qf", "%{"+s.rpm+"}", pkg)
		want, err := os.ReadFile(filepath.Join(root, s.src))
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(got) != strings.TrimSpace(string(want)) {
			t.Errorf("rpm %s scriptlet differs from %s:\n%s", s.rpm, s.src, got)
		}
	}
}

// sameFile fails the test unless the two files have the same bytes.
func sameFile(t *testing.T, got, want string) {
	t.Helper()
	g, err := os.ReadFile(got)
	if err != nil {
		t.Error(err)
		return
	}
	w, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g, w) {
		t.Errorf("%s differs from %s", got, want)
	}
}

// sameBytes fails the test unless got, what names it, is the bytes of
// the repository file src.
func sameBytes(t *testing.T, what string, got []byte, src string) {
	t.Helper()
	w, err := os.ReadFile(filepath.Join(root, src))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, w) {
		t.Errorf("%s differs from the repository's %s", what, src)
	}
}

// sameSet reports whether a and b hold the same strings.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestMaintainerScripts runs the package's maintainer scripts as dpkg and
// rpm would, each in a mount namespace of its own where /etc is a copy
// and /run and /var/lib are empty, with a systemctl that only records its
// arguments: the host is left as it was. It checks the user and group the
// services run as, that a fresh install enables and starts nothing, that
// an upgrade restarts only running services, and that removal stops and
// disables them.
func TestMaintainerScripts(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("needs root, for a mount namespace")
		}
		t.Skip("SKIP: needs root, for a mount namespace")
	}
	unshare := natstest.SystemTool(t, "util-linux", "", "unshare")
	scriptsDir, err := filepath.Abs(filepath.Join(root, "deploy/package"))
	if err != nil {
		t.Fatal(err)
	}
	// sandbox runs body with the scripts in $S and systemctl's calls
	// logged to $LOG, one line each.
	sandbox := func(t *testing.T, systemd bool, body string) string {
		t.Helper()
		dir := t.TempDir()
		bin := filepath.Join(dir, "bin")
		if err := os.Mkdir(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte("#!/bin/sh\necho \"$*\" >> \"$LOG\"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		setup := `set -e
cp -a /etc "$D/etc" && mount --bind "$D/etc" /etc
mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /var/lib
`
		if systemd {
			setup += "mkdir -p /run/systemd/system\n"
		}
		log := filepath.Join(dir, "systemctl.log")
		cmd := exec.Command(unshare, "--mount", "--propagation", "private", "sh", "-c", setup+body)
		cmd.Env = append(os.Environ(), "D="+dir, "S="+scriptsDir, "LOG="+log, "PATH="+bin+":"+os.Getenv("PATH"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		b, err := os.ReadFile(log)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return string(b)
	}

	t.Run("user", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "getent")
		sandbox(t, false, `sh "$S/preinstall.sh" install
sh "$S/preinstall.sh" upgrade 0.1      # a second run changes nothing
getent passwd hbmesh > `+out+`
getent group hbmesh >> `+out+`
test "$(getent passwd | grep -c '^hbmesh:')" = 1
`)
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != 2 {
			t.Fatalf("getent: %q", b)
		}
		// hbmesh:x:UID:GID:comment:home:shell
		p := strings.Split(lines[0], ":")
		g := strings.Split(lines[1], ":")
		if len(p) != 7 || p[5] != "/var/lib/hbmesh" || !strings.HasSuffix(p[6], "nologin") || len(g) < 3 || p[3] != g[2] {
			t.Errorf("user %q, group %q: want home /var/lib/hbmesh, shell nologin, primary group hbmesh", lines[0], lines[1])
		}
	})

	for _, tc := range []struct {
		name, body, want string
	}{
		{"deb install", `sh "$S/postinstall.sh" configure ""`, "daemon-reload\n"},
		{"rpm install", `sh "$S/postinstall.sh" 1`, "daemon-reload\n"},
		{"deb upgrade", `sh "$S/preremove.sh" upgrade 0.2; sh "$S/postinstall.sh" configure 0.1`,
			"daemon-reload\ntry-restart hbmesh-node.service hbmesh-monitor.service hbmesh-notify.service\n"},
		{"rpm upgrade", `sh "$S/postinstall.sh" 2; sh "$S/preremove.sh" 1; sh "$S/postremove.sh" 1`,
			"daemon-reload\ntry-restart hbmesh-node.service hbmesh-monitor.service hbmesh-notify.service\ndaemon-reload\n"},
		{"deb remove", `sh "$S/preremove.sh" remove; sh "$S/postremove.sh" remove`,
			"disable --now hbmesh-node.service hbmesh-monitor.service hbmesh-notify.service\ndaemon-reload\n"},
		{"rpm remove", `sh "$S/preremove.sh" 0; sh "$S/postremove.sh" 0`,
			"disable --now hbmesh-node.service hbmesh-monitor.service hbmesh-notify.service\ndaemon-reload\n"},
		{"deb purge", `mkdir -p /var/lib/hbmesh && touch /var/lib/hbmesh/monitor-peers.json
sh "$S/postremove.sh" purge
test ! -e /var/lib/hbmesh`, "daemon-reload\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sandbox(t, true, tc.body); got != tc.want {
				t.Errorf("systemctl calls:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
	t.Run("without systemd", func(t *testing.T) {
		// In a container or a chroot, no systemctl at all.
		if got := sandbox(t, false, `sh "$S/postinstall.sh" configure 0.1; sh "$S/preremove.sh" remove; sh "$S/postremove.sh" purge`); got != "" {
			t.Errorf("systemctl called without systemd running:\n%s", got)
		}
	})
}
