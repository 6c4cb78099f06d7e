package doclinks_test

import (
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"go.uber.org/goleak"

	"github.com/hbmesh/hbmesh/internal/doclinks"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRepository keeps the repository's Markdown pages' links working,
// relative ones and those to its files under doclinks.SourceURL.
func TestRepository(t *testing.T) {
	repo := os.DirFS("../..")
	pages, err := doclinks.Pages(repo)
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) < 5 {
		t.Fatalf("found only %d Markdown pages in the repository", len(pages))
	}
	checked, errs := doclinks.Check(repo, pages, doclinks.SourceURL)
	for _, err := range errs {
		t.Error(err)
	}
	if checked < 20 {
		t.Fatalf("checked only %d links; the pattern no longer matches the pages", checked)
	}
}

func TestCheck(t *testing.T) {
	tree := fstest.MapFS{
		"README.md":      {Data: []byte("# Top\n[deploy](docs/DEPLOY.md#install)\n")},
		"docs/DEPLOY.md": {Data: []byte("# Deploying\n## Install\n## Install\n<a id=\"sizing\"></a>\n")},
		"deploy/a.yml":   {Data: []byte("x: 1\n")},
		"src/main.go":    {Data: []byte("package main\n")},
	}
	for _, tc := range []struct {
		name, page string
		source     string
		checked    int      // links checked
		wantErrs   []string // one substring per error, in order
	}{
		{"file and heading", "[a](DEPLOY.md#install) [b](DEPLOY.md#install-1) [c](../deploy/a.yml) [d](../deploy)", "", 4, nil},
		{"own heading and id", "[a](#deploying) [b](#sizing) [c](../README.md#top)", "", 3, nil},
		{"missing file", "[a](GONE.md)", "", 1, []string{`link "GONE.md"`}},
		{"missing heading", "[a](DEPLOY.md#upgrades)", "", 1, []string{`has no heading or id "upgrades"`}},
		{"leaves the tree", "[a](../../etc/passwd)", "", 1, []string{"leaves the tree"}},
		{"not links", "`[a](GONE.md)`\n```\n[b](GONE.md)\n```\n[c](https://example.com/x) [d](mailto:a@b)", "", 0, nil},
		{"source URL unchecked", "[a](" + doclinks.SourceURL + "src/gone.go)", "", 0, nil},
		{"source URL checked", "[a](" + doclinks.SourceURL + "src/main.go#L1) [b](" + doclinks.SourceURL + "src/) [c](" + doclinks.SourceURL + "src/gone.go)", doclinks.SourceURL,
			3, []string{"src/gone.go"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for k, v := range tree {
				fsys[k] = v
			}
			fsys["docs/PAGE.md"] = &fstest.MapFile{Data: []byte("# Page\n<p id=\"sizing\"></p>\n# Deploying\n" + tc.page + "\n")}
			checked, errs := doclinks.Check(fsys, []string{"docs/PAGE.md"}, tc.source)
			if checked != tc.checked {
				t.Errorf("checked %d links, want %d", checked, tc.checked)
			}
			if len(errs) != len(tc.wantErrs) {
				t.Fatalf("errors %v, want %d: %q", errs, len(tc.wantErrs), tc.wantErrs)
			}
			for i, err := range errs {
				if !strings.Contains(err.Error(), tc.wantErrs[i]) || !strings.HasPrefix(err.Error(), "docs/PAGE.md: ") {
					t.Errorf("error %q, want it to start with the page and name %q", err, tc.wantErrs[i])
				}
			}
		})
	}
}

func TestPages(t *testing.T) {
	got, err := doclinks.Pages(fstest.MapFS{
		"README.md":      {},
		"docs/A.md":      {},
		"docs/a.yml":     {},
		".ci/NOTES.md":   {},
		"x/.git/HEAD.md": {},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"README.md", "docs/A.md"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Pages = %q, want %q", got, want)
	}
}
