// Package doclinks checks that the relative links of Markdown pages
// resolve within the tree the pages are read from. The repository's tests
// run it over the checkout, and the release checks (internal/pkgtest)
// over the documentation a package installs and an archive holds, so a
// page links correctly wherever a reader opens it.
//
// A link resolves when it names a file or directory of the tree, and its
// #fragment, on a Markdown page, names a heading (as GitHub turns it into
// an anchor) or an id="…". A link that leaves the tree (../ above its
// root) does not resolve. URLs are not followed, except those under
// [SourceURL]: a page points at a file no package ships (Go source, the
// CI script) by its URL there, and a check of the repository itself
// passes SourceURL so those links must name a file of the checkout too.
// Links inside code are not links.
package doclinks

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"
	"unicode"
)

// SourceURL is where the repository's files are published, a file or a
// directory at SourceURL + its path.
const SourceURL = "https://github.com/hbmesh/hbmesh/blob/main/"

// Pages returns every *.md file of fsys, outside directories whose name
// starts with a dot.
func Pages(fsys fs.FS) ([]string, error) {
	var pages []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != "." && strings.HasPrefix(d.Name(), ".") {
			return fs.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			pages = append(pages, p)
		}
		return nil
	})
	return pages, err
}

var link = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// Check checks every link of pages, paths in fsys. source is the URL
// prefix under which fsys's own files are published (SourceURL for the
// repository), or "" when links there are not to be checked. It returns
// how many links it checked and an error for each that does not resolve;
// an error reading a page is one of those errors.
func Check(fsys fs.FS, pages []string, source string) (checked int, errs []error) {
	anchors := map[string]map[string]bool{}
	for _, page := range pages {
		text, err := pageText(fsys, page)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, m := range link.FindAllStringSubmatch(text, -1) {
			target := m[1]
			file, frag, _ := strings.Cut(target, "#")
			var p string
			switch {
			case source != "" && strings.HasPrefix(target, source):
				// A line or a heading of a source file is GitHub's to
				// resolve; the file must exist.
				p, frag = strings.TrimSuffix(strings.TrimPrefix(file, source), "/"), ""
			case strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:"):
				continue
			case file == "":
				p = page
			default:
				p = path.Join(path.Dir(page), file)
				if !fs.ValidPath(p) {
					checked++
					errs = append(errs, fmt.Errorf("%s: link %q: leaves the tree", page, target))
					continue
				}
			}
			checked++
			if _, err := fs.Stat(fsys, p); err != nil {
				errs = append(errs, fmt.Errorf("%s: link %q: %w", page, target, err))
				continue
			}
			if frag == "" || !strings.HasSuffix(p, ".md") {
				continue
			}
			if anchors[p] == nil {
				t, err := pageText(fsys, p)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				anchors[p] = headingAnchors(t)
			}
			if !anchors[p][frag] {
				errs = append(errs, fmt.Errorf("%s: link %q: %s has no heading or id %q", page, target, p, frag))
			}
		}
	}
	return checked, errs
}

var inlineCode = regexp.MustCompile("`[^`\n]*`")

// pageText is a Markdown page without its fenced code blocks, and with
// the brackets of its inline code blanked: both hold text that looks like
// links but is not.
func pageText(fsys fs.FS, page string) (string, error) {
	b, err := fs.ReadFile(fsys, page)
	if err != nil {
		return "", err
	}
	var out []string
	fenced := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if !fenced {
			out = append(out, line)
		}
	}
	return inlineCode.ReplaceAllStringFunc(strings.Join(out, "\n"), func(code string) string {
		return strings.Map(func(r rune) rune {
			if r == '(' || r == ')' || r == '[' || r == ']' {
				return ' '
			}
			return r
		}, code)
	}), nil
}

var idAttr = regexp.MustCompile(`id="([^"]+)"`)

// headingAnchors returns the fragments a page's text answers to:
// GitHub's anchor for each heading (lower case, punctuation dropped,
// spaces to hyphens, a repeated one numbered -1, -2, …) and every
// explicit id="…".
func headingAnchors(text string) map[string]bool {
	out := map[string]bool{}
	for _, m := range idAttr.FindAllStringSubmatch(text, -1) {
		out[m[1]] = true
	}
	seen := map[string]int{}
	for _, line := range strings.Split(text, "\n") {
		h := strings.TrimLeft(line, "#")
		if h == line || !strings.HasPrefix(h, " ") {
			continue
		}
		slug := strings.Map(func(r rune) rune {
			switch {
			case r == ' ':
				return '-'
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				return unicode.ToLower(r)
			}
			return -1
		}, strings.TrimSpace(h))
		if n := seen[slug]; n > 0 {
			out[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}
