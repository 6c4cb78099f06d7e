package monitor_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// TestEveryWarningIsInTheRunbook keeps docs/OPERATIONS.md's "When
// something is wrong" table in step with the monitor and what runs around
// it: every message the monitor, the event sinks and notify log as a
// warning or an error must appear there.
func TestEveryWarningIsInTheRunbook(t *testing.T) {
	doc, err := os.ReadFile("../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, dir := range []string{".", "../internal/events", "../internal/notify"} {
		fs, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		files = append(files, fs...)
	}
	call := regexp.MustCompile(`\.(Warn|Error)\("([^"]+)"`)
	found := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range call.FindAllStringSubmatch(string(src), -1) {
			found++
			if !strings.Contains(string(doc), "`"+m[2]+"`") {
				t.Errorf("%s logs %q, which docs/OPERATIONS.md does not explain", f, m[2])
			}
		}
	}
	if found < 5 {
		t.Fatalf("found only %d log calls; the pattern no longer matches the code", found)
	}
}

// TestDocLinksResolve keeps the Markdown pages' relative links working:
// every link in a *.md file of the repository that is not a URL must name
// a file or directory that exists, and a #fragment must name a heading
// (as GitHub turns it into an anchor) or an id="…" in the page it points
// to. Links inside code are not links.
func TestDocLinksResolve(t *testing.T) {
	root := ".."
	var pages []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			pages = append(pages, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) < 5 {
		t.Fatalf("found only %d Markdown pages under %s", len(pages), root)
	}
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	anchors := map[string]map[string]bool{}
	checked := 0
	for _, page := range pages {
		text := docText(t, page)
		for _, m := range link.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			checked++
			file, frag, _ := strings.Cut(target, "#")
			path := page
			if file != "" {
				path = filepath.Join(filepath.Dir(page), file)
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s: link %q: %v", page, target, err)
					continue
				}
			}
			if frag == "" || !strings.HasSuffix(path, ".md") {
				continue
			}
			if anchors[path] == nil {
				anchors[path] = docAnchors(docText(t, path))
			}
			if !anchors[path][frag] {
				t.Errorf("%s: link %q: %s has no heading or id %q", page, target, path, frag)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("checked only %d relative links; the pattern no longer matches the pages", checked)
	}
}

// docText is a Markdown page without its fenced code blocks and inline
// code, which hold text that looks like links but is not.
func docText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
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
	return regexp.MustCompile("`[^`\n]*`").ReplaceAllStringFunc(strings.Join(out, "\n"), func(code string) string {
		return strings.Map(func(r rune) rune {
			if r == '(' || r == ')' || r == '[' || r == ']' {
				return ' '
			}
			return r
		}, code)
	})
}

// docAnchors returns the fragments a page answers to: GitHub's anchor for
// each heading (lower case, punctuation dropped, spaces to hyphens, a
// repeated one numbered -1, -2, …) and every explicit id="…".
func docAnchors(text string) map[string]bool {
	out := map[string]bool{}
	for _, m := range regexp.MustCompile(`id="([^"]+)"`).FindAllStringSubmatch(text, -1) {
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
