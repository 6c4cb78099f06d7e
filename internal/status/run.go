package status

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/internal/discovery"
	"github.com/hbmesh/hbmesh/wire"
)

// DefaultInterval is how often [Watch] redraws when given zero.
const DefaultInterval = 2 * time.Second

// clearScreen moves the cursor home and clears the terminal.
const clearScreen = "\x1b[H\x1b[2J"

// ErrUsage is wrapped by the errors [Run] returns for bad flags or
// arguments, so the CLI can exit with status 2.
var ErrUsage = errors.New("usage")

// RenderFunc renders one report, as [RenderJSON] does or [Render] with
// options bound.
type RenderFunc func(io.Writer, *Report) error

// Watch gathers and renders every interval (DefaultInterval if zero or
// less) until ctx is done, then returns nil. Each frame starts with the
// time its monitors were asked ("as of 15:04:05, every 2s"), so a view
// that stopped updating shows it. On a terminal each frame clears the
// screen first; otherwise frames follow each other separated by a blank
// line, which suits logs and pipes. A failed gather is shown as that
// frame, with its time, and the watch goes on, since monitors may come
// back. render nil means Render with default options. Watch returns early
// only if writing to w or rendering fails.
func Watch(ctx context.Context, nc *nats.Conn, prefix string, every time.Duration, w io.Writer, render RenderFunc) error {
	return watch(ctx, nc, prefix, every, 0, 0, w, render, false)
}

// watch is Watch; with jsonLines every round is one line of JSON from
// render (RenderJSON), with nothing between them, and a failed round is a
// Report with only its Error set.
func watch(ctx context.Context, nc *nats.Conn, prefix string, every, wait time.Duration, expect int, w io.Writer, render RenderFunc, jsonLines bool) error {
	if every <= 0 {
		every = DefaultInterval
	}
	if wait <= 0 {
		wait = min(DefaultWait, every)
	}
	if render == nil {
		render = func(w io.Writer, r *Report) error { return Render(w, r, RenderOptions{}) }
	}
	subj, err := wire.NewSubjects(prefix)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	tty := !jsonLines && isTerminal(w)
	tick := time.NewTicker(every)
	defer tick.Stop()
	var frame bytes.Buffer
	for n := 0; ; n++ {
		asked := time.Now()
		r, err := GatherExpect(ctx, nc, prefix, wait, expect)
		if ctx.Err() != nil {
			return nil
		}
		// Build the frame first and write it at once, so a terminal never
		// shows a cleared screen while monitors are being asked.
		frame.Reset()
		switch {
		case jsonLines:
			if err != nil {
				r = &Report{Type: ReportType, Time: asked.UTC(), Subject: subj.Control(discovery.EndpointPeers), Error: err.Error()}
			}
			if err := render(&frame, r); err != nil {
				return fmt.Errorf("status: render: %w", err)
			}
		case err != nil:
			if tty {
				frame.WriteString(clearScreen)
			} else if n > 0 {
				frame.WriteString("\n")
			}
			fmt.Fprintf(&frame, "%s  %v\n", asked.Format(time.TimeOnly), err)
		default:
			if tty {
				frame.WriteString(clearScreen)
			} else if n > 0 {
				frame.WriteString("\n")
			}
			fmt.Fprintf(&frame, "as of %s, every %s\n\n", asked.Format(time.TimeOnly), every)
			if err := render(&frame, r); err != nil {
				return fmt.Errorf("status: render: %w", err)
			}
		}
		if _, err := w.Write(frame.Bytes()); err != nil {
			return fmt.Errorf("status: write: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// isTerminal reports whether w is a character device, without a
// dependency on x/term: good enough to decide whether to clear a screen.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Run is the `hbmesh status` command: it parses args, then gathers and
// renders once, or keeps doing so with --watch until ctx is done. After
// one round, it returns an error wrapping ErrFailOn if a --fail-on
// condition holds. Usage
// goes to stderr; errors for bad flags wrap ErrUsage (and flag.ErrHelp for
// -h). It does not close nc.
func Run(ctx context.Context, nc *nats.Conn, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	prefix := fs.String("prefix", wire.DefaultPrefix, "subject `prefix` of the mesh")
	asJSON := fs.Bool("json", false, "print one JSON document (one per line with --watch)")
	watchFlag := fs.Bool("watch", false, "redraw every --interval until interrupted")
	wait := fs.Duration("wait", DefaultWait, "how long to wait for monitors to answer")
	interval := fs.Duration("interval", DefaultInterval, "time between redraws; needs --watch")
	failOn := fs.String("fail-on", "", "comma `list` of conditions ("+strings.Join(FailConditions(), ",")+") that make the command fail once the report is printed")
	expect := fs.Int("expect", 0, "how many monitors the mesh runs: wait for that many, warn if fewer answer, and fail any --fail-on")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: hbmesh status [flags]\n\n"+
			"Asks every monitor what it sees and shows each peer's state, marking with !\n"+
			"the peers that monitors disagree on.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case fs.NArg() > 0:
		return usage(fs, "unexpected argument %q", fs.Arg(0))
	case set["interval"] && !*watchFlag:
		// Implying --watch would turn a one-shot check, as in cron, into
		// one that never ends; saying so is less of a surprise.
		return usage(fs, "--interval needs --watch")
	case *failOn != "" && *watchFlag:
		return usage(fs, "--fail-on needs a single round, not --watch")
	case *wait <= 0:
		return usage(fs, "--wait %v must be positive", *wait)
	case *interval <= 0:
		return usage(fs, "--interval %v must be positive", *interval)
	case *expect < 0:
		return usage(fs, "--expect %d must not be negative", *expect)
	}
	if err := wire.ValidatePrefix(*prefix); err != nil {
		return usage(fs, "--prefix: %v", err)
	}
	conds, err := ParseFailOn(*failOn)
	if err != nil {
		return usage(fs, "--fail-on: %v", err)
	}
	if nc == nil {
		return errors.New("status: nil *nats.Conn")
	}
	render := func(w io.Writer, r *Report) error { return Render(w, r, RenderOptions{}) }
	if *asJSON {
		render = RenderJSON
	}
	if *watchFlag {
		return watch(ctx, nc, *prefix, *interval, *wait, *expect, stdout, render, *asJSON)
	}
	r, err := GatherExpect(ctx, nc, *prefix, *wait, *expect)
	if err != nil {
		return err
	}
	if err := render(stdout, r); err != nil {
		return err
	}
	if found := r.Find(conds); len(found) > 0 {
		return fmt.Errorf("%w: %s", ErrFailOn, strings.Join(found, ", "))
	}
	return nil
}

func usage(fs *flag.FlagSet, format string, args ...any) error {
	err := fmt.Errorf("%w: "+format, append([]any{ErrUsage}, args...)...)
	fmt.Fprintln(fs.Output(), err)
	fs.Usage()
	return err
}
