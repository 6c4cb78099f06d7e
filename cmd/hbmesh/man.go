package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/alecthomas/kong"
)

// manCmd is the hidden `hbmesh man`: the hbmesh(1) man page, in roff,
// written from the same kong model as --help, so the two cannot drift.
type manCmd struct{}

func (c *manCmd) Run(k *kong.Kong, e *env) error {
	return writeMan(e.stdout, k.Model)
}

// writeMan writes app's man page: every visible subcommand with its
// description, flags (default, environment variables) and examples, then
// every environment variable and the exit codes.
func writeMan(w io.Writer, app *kong.Application) error {
	m := &manWriter{}
	m.line(`.TH HBMESH 1 "" "hbmesh %s" "User Commands"`, roffText(buildVersion().Version))
	m.line(".SH NAME")
	m.line(`hbmesh \- %s`, roffText(strings.TrimSuffix(strings.TrimPrefix(appHelp, "hbmesh is "), ".")))
	m.line(".SH SYNOPSIS")
	m.line(`.B hbmesh`)
	m.line(`.I command`)
	m.line(`.RI [ flags ]`)
	m.line(".SH DESCRIPTION")
	m.text(appHelp)
	m.text("Every flag has a long form; some have a short one. A flag given on the command line beats its environment variable, which beats a nats CLI context (--context), which beats the default.")
	m.flags(app.Flags)
	m.line(".SH COMMANDS")
	envs := map[string][]string{} // variable -> the flags that read it
	for _, n := range app.Leaves(true) {
		m.line(`.SS "hbmesh %s"`, roffText(n.Summary()))
		m.text(n.Help)
		m.text(n.Detail)
		var flags []*kong.Flag
		for _, group := range n.AllFlags(true) {
			for _, f := range group {
				if f.Name != "help" && f.Name != "version" { // every command's, listed once above
					flags = append(flags, f)
				}
			}
		}
		m.flags(flags)
		for _, f := range flags {
			for _, ev := range f.Envs {
				if s := n.Path() + " --" + f.Name; !slices.Contains(envs[ev], s) {
					envs[ev] = append(envs[ev], s)
				}
			}
		}
		if ex := examplesOf(n); len(ex) > 0 {
			m.line(".PP")
			m.line("Examples:")
			m.pre(ex)
		}
	}
	m.line(".SH ENVIRONMENT")
	names := make([]string, 0, len(envs))
	for ev := range envs {
		names = append(names, ev)
	}
	slices.Sort(names)
	for _, ev := range names {
		m.item(`\fB`+roffText(ev)+`\fR`, "The value of "+strings.Join(envs[ev], ", ")+" when the flag is not given.")
	}
	m.line(".SH EXIT STATUS")
	m.item(`\fB0\fR`, "success, or help was asked for")
	m.item(`\fB1\fR`, "a runtime failure: cannot connect, authorization refused, a probe unanswered, a --fail-on condition")
	m.item(`\fB2\fR`, "a bad command line or environment variable")
	m.line(".SH SEE ALSO")
	m.line(".BR nats (1),")
	m.line(".BR nats-server (8)")
	_, err := io.WriteString(w, m.String())
	return err
}

// manWriter builds roff, one request or text line at a time.
type manWriter struct{ strings.Builder }

func (m *manWriter) line(format string, args ...any) {
	fmt.Fprintf(m, format+"\n", args...)
}

// text writes prose: paragraphs, and indented lines as they are.
func (m *manWriter) text(s string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return
	}
	for _, para := range strings.Split(s, "\n\n") {
		lines := strings.Split(para, "\n")
		if strings.HasPrefix(lines[0], " ") {
			m.pre(lines)
			continue
		}
		m.line(".PP")
		m.line("%s", roffText(strings.Join(lines, " ")))
	}
}

// item writes a tagged paragraph: tag, already roff, then text.
func (m *manWriter) item(tag, text string) {
	m.line(".TP")
	m.line("%s", tag)
	m.line("%s", roffText(text))
}

// pre writes lines without filling, indented.
func (m *manWriter) pre(lines []string) {
	m.line(".RS")
	m.line(".nf")
	for _, l := range lines {
		m.line("%s", roffText(strings.TrimSpace(l)))
	}
	m.line(".fi")
	m.line(".RE")
}

// flags writes one tagged paragraph per visible flag.
func (m *manWriter) flags(flags []*kong.Flag) {
	for _, f := range flags {
		if f.Hidden {
			continue
		}
		name := `\fB\-\-` + roffText(f.Name) + `\fR`
		if f.Short != 0 {
			name = `\fB\-` + roffText(string(f.Short)) + `\fR, ` + name
		}
		if !f.IsBool() {
			name += `=\fI` + roffText(f.FormatPlaceHolder()) + `\fR`
		}
		m.item(name, formatValue(f.Value))
	}
}

// roffText escapes s for a roff text line: backslashes, hyphens, characters
// beyond ASCII, and a leading dot or quote that would read as a request.
func roffText(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\e`)
		case r == '-':
			b.WriteString(`\-`)
		case r > 127:
			fmt.Fprintf(&b, `\[u%04X]`, r)
		default:
			b.WriteRune(r)
		}
	}
	s = b.String()
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
