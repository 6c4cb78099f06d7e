// Command hbmesh runs hbmesh nodes, monitors and servers.
//
// main is deliberately thin: it turns signals into a context and hands the
// process's arguments, streams and environment to run, which tests drive
// in-process. The command line is the struct cli, parsed by kong: each
// subcommand is a struct in its own file whose fields are its flags and
// whose Run method runs it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"
	"github.com/willabides/kongplete"
)

// Exit codes.
const (
	exitOK      = 0 // success, or help was asked for
	exitFailure = 1 // a runtime failure: connect, auth, probe unanswered...
	exitUsage   = 2 // a bad command line
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "node" {
		tuneNodeProcess(os.Getenv)
	}
	// A hangup (the terminal of a foreground node closing, or its ssh
	// connection dropping) ends a command as gracefully as an interrupt: a
	// node says goodbye, a monitor saves its memory. Its default would
	// kill the process without either.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// cli is hbmesh's command line. To add a subcommand, write its struct
// (flags as fields, a Run method) in its own file and add one field here;
// the order here is the order of `hbmesh help`.
type cli struct {
	Version versionFlag `help:"print the version and exit"`

	Node        nodeCmd        `cmd:"" help:"publish heartbeats for this process until interrupted"`
	Monitor     monitorCmd     `cmd:"" help:"watch every node; print, publish and serve (--http) liveness transitions"`
	Status      statusCmd      `cmd:"" help:"ask every monitor what it sees and show where they disagree" set:"loglevel=warn"`
	Watch       watchCmd       `cmd:"" help:"status, redrawn every few seconds" set:"loglevel=warn"`
	Notify      notifyCmd      `cmd:"" help:"run hooks, webhooks and Alertmanager alerts once per transition, from the event stream"`
	Probe       probeCmd       `kong:"cmd,help='ask one node whether it is alive',set='loglevel=warn',set='timeout=2s'"`
	Server      serverCmd      `cmd:"" help:"run a standalone NATS server"`
	Demo        demoCmd        `cmd:"" help:"run a server, a few nodes and a monitor in one process" set:"loglevel=warn"`
	Healthcheck healthcheckCmd `cmd:"" help:"GET a monitor's /readyz; exit 0 when healthy (for container health checks)"`
	Bench       benchCmd       `cmd:"" help:"run a whole-system benchmark: ingest, detect, scale, probe, node"`
	VersionCmd  versionCmd     `cmd:"" name:"version" help:"print the version, commit, build date, Go version and platform"`
	Completion  completionCmd  `cmd:"" help:"print a shell completion script: bash, zsh or fish"`
	Help        helpCmd        `cmd:"" help:"show help for hbmesh or a subcommand"`
	Man         manCmd         `cmd:"" hidden:"" help:"print the hbmesh(1) man page (roff)"`
}

// appHelp is the description on top of `hbmesh help`.
const appHelp = "hbmesh is a NATS-based heartbeat mesh: nodes beat, monitors judge liveness."

// appExamples end `hbmesh help`.
var appExamples = []string{
	"hbmesh demo --chaos                       # everything in one process",
	"hbmesh monitor --embedded                 # a server and a monitor on 127.0.0.1:4222",
	"hbmesh node --id web-1 --label role=web   # beat into it (other hosts: --host 0.0.0.0 above)",
	"hbmesh probe web-1",
	"hbmesh monitor --http 127.0.0.1:8080      # dashboard, /metrics, /readyz",
	"hbmesh status                             # what every monitor sees",
}

// env is what a subcommand may touch of the outside world. Nothing in this
// package reads os.Args, os.Stdout or os.Getenv directly, so tests can run
// every subcommand in-process.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	// from records where each flag given a value got it, by long name:
	// "--name" for the command line, "$VAR" for an environment variable.
	// Flags left at their default are absent.
	from map[string]string
}

// onCommandLine reports whether flag name was given on the command line.
func (e *env) onCommandLine(name string) bool { return e.from[name] == "--"+name }

// given reports whether flag name was given on the command line or by its
// environment variable.
func (e *env) given(name string) bool { return e.from[name] != "" }

// source names where the value of flag name came from, for messages:
// --name, or $VAR when its environment variable gave it.
func (e *env) source(name string) string {
	if s := e.from[name]; s != "" {
		return s
	}
	return "--" + name
}

// exitPanic carries an exit code out of kong, which calls its Exit option
// after printing help (or a version, or completions) in the middle of
// parsing; run recovers it.
type exitPanic int

// newParser builds the kong parser for c, printing help and other output
// to stdout.
func newParser(ctx context.Context, c *cli, e *env, stdout io.Writer) (*kong.Kong, error) {
	opts := []kong.Option{
		kong.Name("hbmesh"),
		kong.Description(appHelp),
		kong.Writers(stdout, e.stderr),
		kong.Exit(func(code int) { panic(exitPanic(code)) }),
		kong.Resolvers(envResolver{e}),
		kong.Help(printHelp),
		kong.ValueFormatter(formatValue),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true, WrapUpperBound: 100}),
		kong.ExplicitGroups(flagGroups),
		defaultVars(),
		kong.BindTo(ctx, (*context.Context)(nil)),
		kong.Bind(e),
	}
	k, err := kong.New(c, append(opts, mappers()...)...)
	if err != nil {
		return nil, err
	}
	takeEnvs(k.Model.Node)
	return k, nil
}

// run executes the command line args and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) (code int) {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv, from: map[string]string{}}
	helpOut := stdout
	completing := getenv("COMP_LINE") != ""
	if len(args) == 0 && !completing {
		// Help, but as a usage error: on stderr, exit 2.
		args, helpOut = []string{"--help"}, stderr
		defer func() { code = exitUsage }()
	}
	var c cli
	parser, err := newParser(ctx, &c, e, helpOut)
	if err != nil {
		// The command line's declaration is wrong: a bug.
		fmt.Fprintf(stderr, "hbmesh: %v\n", err)
		return exitFailure
	}
	defer func() {
		if r := recover(); r != nil {
			ex, ok := r.(exitPanic)
			if !ok {
				panic(r)
			}
			code = int(ex)
		}
	}()
	if completing {
		// A shell asks for completions (see completion.go): this prints
		// them and exits.
		kongplete.Complete(parser)
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		name := "hbmesh"
		var pe *kong.ParseError
		if errors.As(err, &pe) && pe.Context != nil && pe.Context.Selected() != nil {
			name = pe.Context.Selected().FullPath()
		}
		fmt.Fprintf(stderr, "%s: %s\n", name, oneLine(parseErrorMessage(pe, err)))
		return exitUsage
	}
	for _, p := range kctx.Path {
		if p.Flag != nil && !p.Resolved {
			e.from[p.Flag.Name] = "--" + p.Flag.Name
		}
	}
	err = kctx.Run()
	name := kctx.Selected().FullPath()
	switch {
	case err == nil:
		return exitOK
	case isUsage(err):
		fmt.Fprintf(stderr, "%s: %s\n", name, oneLine(err.Error()))
		return exitUsage
	default:
		fmt.Fprintf(stderr, "%s: %s\n", name, oneLine(err.Error()))
		return exitFailure
	}
}

// parseErrorMessage is kong's message for err, but for a variable's bad
// value (the variable, not the flag, is to blame), a missing argument and
// a flag at the end without its value, which kong words for its own
// developers.
func parseErrorMessage(pe *kong.ParseError, err error) string {
	msg := err.Error()
	if ee, ok := errors.AsType[*envError](err); ok {
		return ee.Error()
	}
	if arg, ok := strings.CutPrefix(msg, `expected "<`); ok && pe != nil && pe.Context.Selected() != nil {
		return fmt.Sprintf("missing %s (usage: hbmesh %s)", strings.TrimSuffix(arg, `>"`), pe.Context.Selected().Summary())
	}
	if rest, ok := strings.CutPrefix(msg, "unexpected argument "); ok && (pe == nil || pe.Context.Selected() == nil || len(pe.Context.Selected().Children) > 0) {
		// Where a subcommand was expected.
		name, more, _ := strings.Cut(rest, ",")
		if more != "" {
			more = "," + more
		}
		return fmt.Sprintf("unknown command %q%s (see 'hbmesh help')", name, more)
	}
	if flag, ok := strings.CutSuffix(msg, ` value but got "EOL" (<EOL>)`); ok {
		flag, _, _ = strings.Cut(flag, ":")
		return flag + ": missing value"
	}
	return msg
}

// oneLine keeps an error message on one line, so scripts can rely on one
// line per failure.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

// helpCmd is `hbmesh help [COMMAND...]`: `hbmesh help node` is
// `hbmesh node --help`.
type helpCmd struct {
	Command []string `arg:"" optional:"" help:"the subcommand to describe"`
}

func (c *helpCmd) Run(ctx context.Context, e *env) error {
	if len(c.Command) == 0 || c.Command[0] == "help" {
		if code := run(ctx, []string{"--help"}, e.stdin, e.stdout, e.stderr, e.getenv); code != exitOK {
			return errors.New("help failed")
		}
		return nil
	}
	args := append(append([]string(nil), c.Command...), "--help")
	var stderr strings.Builder
	if code := run(ctx, args, e.stdin, e.stdout, &stderr, e.getenv); code != exitOK {
		return usagef("unknown command %q (see 'hbmesh help')", strings.Join(c.Command, " "))
	}
	return nil
}
