// Command hbmesh runs hbmesh nodes, monitors and servers.
//
// main is deliberately thin: it turns signals into a context and hands the
// process's arguments, streams and environment to run, which tests drive
// in-process.
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
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

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
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// env is what a subcommand may touch of the outside world. Nothing in this
// package reads os.Args, os.Stdout or os.Getenv directly, so tests can run
// every subcommand in-process.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

// command is one row of the subcommand table. To add a subcommand, write
// its function in its own file and add one row to commands.
type command struct {
	name    string
	summary string // one line, for `hbmesh help`
	run     func(ctx context.Context, e *env, args []string) error
}

// commands is the subcommand table, in the order `hbmesh help` lists them.
// It is a function rather than a package variable so it cannot be mutated.
func commands() []command {
	return []command{
		{"node", "publish heartbeats for this process until interrupted", runNode},
		{"monitor", "watch every node; print, publish and serve (--http) liveness transitions", runMonitor},
		{"status", "ask every monitor what it sees and show where they disagree", runStatus},
		{"watch", "status, redrawn every few seconds", runWatch},
		{"probe", "ask one node whether it is alive", runProbe},
		{"server", "run a standalone NATS server", runServer},
		{"demo", "run a server, a few nodes and a monitor in one process", runDemo},
		{"healthcheck", "GET a monitor's /readyz; exit 0 when healthy (for container health checks)", runHealthcheck},
		{"bench", "run a whole-system benchmark: ingest, detect, scale, probe", runBench},
		{"version", "print the version", runVersion},
		{"help", "show help for hbmesh or a subcommand", nil}, // handled by run
	}
}

func findCommand(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// run executes the command line args and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	if len(args) == 0 {
		printHelp(stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 && name == "help" && !isHelpArg(rest[0]) {
			// `hbmesh help node` is `hbmesh node --help`.
			if _, ok := findCommand(rest[0]); ok && rest[0] != "help" {
				return run(ctx, []string{rest[0], "--help"}, stdin, stdout, stderr, getenv)
			}
			fmt.Fprintf(stderr, "hbmesh help: unknown command %q (see 'hbmesh help')\n", rest[0])
			return exitUsage
		}
		printHelp(stdout)
		return exitOK
	case "-version", "--version":
		name = "version"
	}
	cmd, ok := findCommand(name)
	if !ok || cmd.run == nil {
		fmt.Fprintf(stderr, "hbmesh: unknown command %q (see 'hbmesh help')\n", name)
		return exitUsage
	}
	err := cmd.run(ctx, e, rest)
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errHelpShown):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "hbmesh %s: %s\n", cmd.name, oneLine(ue.msg))
		return exitUsage
	default:
		fmt.Fprintf(stderr, "hbmesh %s: %s\n", cmd.name, oneLine(err.Error()))
		return exitFailure
	}
}

// oneLine keeps an error message on one line, so scripts can rely on one
// line per failure.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

// isHelpArg reports whether arg asks for help: `hbmesh help --help` and
// `hbmesh help help` show the same as `hbmesh help`.
func isHelpArg(arg string) bool {
	switch arg {
	case "help", "-h", "-help", "--help":
		return true
	}
	return false
}

func printHelp(w io.Writer) {
	var b strings.Builder
	b.WriteString("hbmesh is a NATS-based heartbeat mesh: nodes beat, monitors judge liveness.\n\n")
	b.WriteString("Usage:\n  hbmesh <command> [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-12s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun 'hbmesh <command> --help' for a command's flags, environment and examples.\n")
	b.WriteString("\nExamples:\n")
	b.WriteString("  hbmesh demo --chaos                       # everything in one process\n")
	b.WriteString("  hbmesh monitor --embedded                 # a server and a monitor on 127.0.0.1:4222\n")
	b.WriteString("  hbmesh node --id web-1 --label role=web   # beat into it (other hosts: --host 0.0.0.0 above)\n")
	b.WriteString("  hbmesh probe web-1\n")
	b.WriteString("  hbmesh monitor --http 127.0.0.1:8080      # dashboard, /metrics, /readyz\n")
	b.WriteString("  hbmesh status                             # what every monitor sees\n")
	io.WriteString(w, b.String())
}

func runVersion(_ context.Context, e *env, args []string) error {
	f := newFlags("version", "hbmesh version", "Print the version of this binary.", nil)
	if err := f.parse(e, args); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "hbmesh %s\n", version)
	return nil
}
