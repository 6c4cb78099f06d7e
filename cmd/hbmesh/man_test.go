package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/hbmesh/hbmesh/internal/natstest"
)

// TestManPage: `hbmesh man` lists every subcommand, flag variable and exit
// code, and is roff that groff renders without a warning.
func TestManPage(t *testing.T) {
	code, page, stderr := runSync(t, nil, "man")
	if code != exitOK || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, cmd := range []string{"node", "monitor", "status", "watch", "probe <id>", "server", "demo", "healthcheck",
		"bench ingest", "bench detect", "bench scale", "bench probe", "version", "completion <shell>", "help"} {
		if !strings.Contains(page, `.SS "hbmesh `+roffText(cmd)) {
			t.Errorf("no section for hbmesh %s", cmd)
		}
	}
	for _, want := range []string{".SH ENVIRONMENT", `\fBHBMESH_LABELS\fR`, `\fBNATS_URL\fR`, `\fBNATS_CONTEXT\fR`,
		`\fB\-s\fR, \fB\-\-server\fR=\fIURL\fR`, ".SH EXIT STATUS", "Examples:"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, hidden := range []string{"_publisher", "drop\\-beats", "hbmesh man"} {
		if strings.Contains(page, hidden) {
			t.Errorf("page shows hidden %q", hidden)
		}
	}
	// Well-formed: every line is a known request or text that cannot be
	// taken for one, with no raw non-ASCII byte.
	request := regexp.MustCompile(`^\.(TH|SH|SS|PP|TP|B|I|RI|BR|RS|RE|nf|fi)( |$)`)
	for i, line := range strings.Split(strings.TrimSuffix(page, "\n"), "\n") {
		if (strings.HasPrefix(line, ".") || strings.HasPrefix(line, "'")) && !request.MatchString(line) {
			t.Errorf("line %d is no request this page uses: %q", i+1, line)
		}
		for _, r := range line {
			if r > 127 {
				t.Errorf("line %d holds %q unescaped", i+1, r)
				break
			}
		}
	}

	groff := natstest.SystemTool(t, "groff-base", "", "groff")
	cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = strings.NewReader(page)
	var warnings bytes.Buffer
	cmd.Stderr = &warnings
	if err := cmd.Run(); err != nil || warnings.Len() > 0 {
		t.Errorf("groff: %v\n%s", err, warnings.String())
	}
}

// TestOperationsDocListsEveryFlag: docs/OPERATIONS.md's reference names
// every flag of node and monitor and its environment variable, so a flag
// added to the CLI is added to the reference too.
func TestOperationsDocListsEveryFlag(t *testing.T) {
	doc, err := os.ReadFile("../../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	var c cli
	e := &env{stdout: io.Discard, stderr: io.Discard, getenv: noEnv, from: map[string]string{}}
	p, err := newParser(context.Background(), &c, e, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range p.Model.Leaves(true) {
		if n.Name != "node" && n.Name != "monitor" {
			continue
		}
		for _, group := range n.AllFlags(true) {
			for _, f := range group {
				if f.Name == "help" || f.Name == "version" {
					continue
				}
				if !bytes.Contains(doc, []byte("`--"+f.Name)) && !bytes.Contains(doc, []byte(", --"+f.Name)) {
					t.Errorf("OPERATIONS.md does not document %s --%s", n.Name, f.Name)
				}
				for _, ev := range f.Envs {
					if !bytes.Contains(doc, []byte("`"+ev+"`")) {
						t.Errorf("OPERATIONS.md does not name %s, the variable of %s --%s", ev, n.Name, f.Name)
					}
				}
			}
		}
	}
}

// TestHelpNamesOwnFlags: the help of every command, its examples
// included, names only flags that command has, so text shared by several
// commands cannot send one to a flag of another.
func TestHelpNamesOwnFlags(t *testing.T) {
	var c cli
	e := &env{stdout: io.Discard, stderr: io.Discard, getenv: noEnv, from: map[string]string{}}
	p, err := newParser(context.Background(), &c, e, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	flagRE := regexp.MustCompile(`(?:^|[^\w-])(--[a-z][\w-]*)`)
	for _, n := range p.Model.Leaves(true) {
		if n.Hidden {
			continue
		}
		path := strings.Fields(n.FullPath())[1:]
		// "monitor --http" in another command's help names monitor's flag.
		var others []string
		for _, o := range p.Model.Children {
			if o.Name != path[0] {
				others = append(others, o.Name)
			}
		}
		otherRE := regexp.MustCompile(`\b(?:` + strings.Join(others, "|") + `) --[\w-]+`)
		t.Run(strings.Join(path, " "), func(t *testing.T) {
			has := map[string]bool{"--help": true}
			for _, group := range n.AllFlags(true) {
				for _, f := range group {
					has["--"+f.Name] = true
					for _, a := range f.Aliases {
						has["--"+a] = true
					}
				}
			}
			_, stdout, _ := runSync(t, nil, append(path, "--help")...)
			// Help wraps to the terminal's width: join the words.
			words := otherRE.ReplaceAllString(strings.Join(strings.Fields(stdout), " "), "")
			for _, m := range flagRE.FindAllStringSubmatch(words, -1) {
				if !has[m[1]] {
					t.Errorf("help names %s, which %s does not have", m[1], n.FullPath())
				}
			}
		})
	}
}
