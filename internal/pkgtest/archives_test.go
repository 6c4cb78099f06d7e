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
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/hbmesh/hbmesh/internal/doclinks"
)

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
