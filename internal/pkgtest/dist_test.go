//go:build dist

package pkgtest_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

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
