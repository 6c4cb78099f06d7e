package status

import (
	"bytes"
	"context"
	"errors"
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

// ErrUsage is wrapped by the errors [Run] returns for options out of
// range, so the CLI can exit with status 2.
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

// Options are what `hbmesh status` asks for. A zero field means its
// default.
type Options struct {
	// Prefix is the subject prefix of the mesh. Default: wire.DefaultPrefix.
	Prefix string
	// JSON renders one JSON document (one line per round with Watch)
	// instead of the table.
	JSON bool
	// Watch gathers and renders every Interval until ctx is done.
	Watch bool
	// Wait is how long to wait for monitors to answer. Default: DefaultWait.
	Wait time.Duration
	// Interval is the time between rounds with Watch. Default:
	// DefaultInterval.
	Interval time.Duration
	// FailOn is a comma-separated list of conditions (FailConditions) that
	// make Run fail once the report is printed. It needs a single round,
	// not Watch.
	FailOn string
	// Expect is how many monitors the mesh runs: wait for that many, warn
	// if fewer answer, and fail any FailOn. Default: 0, whoever answers.
	Expect int
}

// Validate reports the first option out of range, in an error wrapping
// ErrUsage.
func (o Options) Validate() error {
	switch {
	case o.FailOn != "" && o.Watch:
		return fmt.Errorf("%w: --fail-on needs a single round, not --watch", ErrUsage)
	case o.Wait < 0:
		return fmt.Errorf("%w: --wait %v must be positive", ErrUsage, o.Wait)
	case o.Interval < 0:
		return fmt.Errorf("%w: --interval %v must be positive", ErrUsage, o.Interval)
	case o.Expect < 0:
		return fmt.Errorf("%w: --expect %d must not be negative", ErrUsage, o.Expect)
	}
	if o.Prefix != "" {
		if err := wire.ValidatePrefix(o.Prefix); err != nil {
			return fmt.Errorf("%w: --prefix: %w", ErrUsage, err)
		}
	}
	if _, err := ParseFailOn(o.FailOn); err != nil {
		return fmt.Errorf("%w: --fail-on: %w", ErrUsage, err)
	}
	return nil
}

// Run is the `hbmesh status` command: it gathers and renders once, or
// keeps doing so with Watch until ctx is done. After one round, it returns
// an error wrapping ErrFailOn if a FailOn condition holds. Options that do
// not validate yield an error wrapping ErrUsage. It does not close nc.
func Run(ctx context.Context, nc *nats.Conn, o Options, stdout io.Writer) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if o.Prefix == "" {
		o.Prefix = wire.DefaultPrefix
	}
	if o.Wait == 0 {
		o.Wait = DefaultWait
	}
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	conds, _ := ParseFailOn(o.FailOn) // checked by Validate
	if nc == nil {
		return errors.New("status: nil *nats.Conn")
	}
	render := func(w io.Writer, r *Report) error { return Render(w, r, RenderOptions{}) }
	if o.JSON {
		render = RenderJSON
	}
	if o.Watch {
		return watch(ctx, nc, o.Prefix, o.Interval, o.Wait, o.Expect, stdout, render, o.JSON)
	}
	r, err := GatherExpect(ctx, nc, o.Prefix, o.Wait, o.Expect)
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
