package status

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/internal/cfgerr"
	"github.com/hbmesh/hbmesh/internal/discovery"
	"github.com/hbmesh/hbmesh/wire"
)

// DefaultInterval is how often [Run] redraws with Watch when Interval is
// zero.
const DefaultInterval = 2 * time.Second

// clearScreen moves the cursor home and clears the terminal.
const clearScreen = "\x1b[H\x1b[2J"

// invalid names the options in their errors, which name the flag.
const invalid cfgerr.Of = "status"

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
	// Wait is how long to wait for monitors to answer. Zero or less:
	// DefaultWait.
	Wait time.Duration
	// Interval is the time between rounds with Watch. Zero or less:
	// DefaultInterval.
	Interval time.Duration
	// FailOn is a comma-separated list of conditions (FailConditions) that
	// make Run fail once the report is printed. It needs a single round,
	// not Watch.
	FailOn string
	// Expect is how many monitors the mesh runs: wait for that many, warn
	// if fewer answer, and fail any FailOn. Zero or less: whoever answers.
	Expect int

	// pending, if positive, is how many replies may wait to be read
	// before NATS drops more, instead of nats.go's default (for tests).
	pending int
}

// Validate reports the first option a caller can get wrong as a
// configuration error (cfgerr) naming its flag. The CLI bounds the
// durations and counts itself.
func (o Options) Validate() error {
	if err := wire.ValidatePrefix(cmp.Or(o.Prefix, wire.DefaultPrefix)); err != nil {
		return invalid.Wrap("--prefix", nil, err)
	}
	if _, err := ParseFailOn(o.FailOn); err != nil {
		return invalid.Wrap("--fail-on", nil, err)
	}
	if o.FailOn != "" && o.Watch {
		return invalid.Field("--fail-on", nil, "needs a single round, not --watch")
	}
	return nil
}

// Run is the `hbmesh status` command: it gathers and renders once, or
// keeps doing so with Watch until ctx is done. After one round, it returns
// an error wrapping ErrFailOn if a FailOn condition holds. Options that do
// not validate yield Validate's error. It does not close nc.
func Run(ctx context.Context, nc *nats.Conn, o Options, stdout io.Writer) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if nc == nil {
		return errors.New("status: nil *nats.Conn")
	}
	if o.Watch {
		return watch(ctx, nc, o, stdout)
	}
	r, err := Gather(ctx, nc, o)
	if err != nil {
		return err
	}
	if err := render(stdout, r, o.JSON); err != nil {
		return err
	}
	conds, _ := ParseFailOn(o.FailOn) // checked by Validate
	if found := r.Find(conds); len(found) > 0 {
		return fmt.Errorf("%w: %s", ErrFailOn, strings.Join(found, ", "))
	}
	return nil
}

// watch gathers and renders a frame every o.Interval until ctx is done,
// then returns nil, or earlier if writing to w or rendering fails. A frame
// starts with the time it was asked, so a view that stopped updating
// shows it; a failed gather is that frame (with o.JSON, a Report with only
// Error set), and the watch goes on, since monitors may come back.
func watch(ctx context.Context, nc *nats.Conn, o Options, w io.Writer) error {
	every := cmp.Or(max(o.Interval, 0), DefaultInterval)
	// Validate checked the prefix.
	subject := wire.MustSubjects(cmp.Or(o.Prefix, wire.DefaultPrefix)).Control(discovery.EndpointPeers)
	// Clear the screen only on a terminal, a character device: x/term is
	// not needed for that.
	tty := false
	if f, ok := w.(*os.File); ok && !o.JSON {
		fi, err := f.Stat()
		tty = err == nil && fi.Mode()&os.ModeCharDevice != 0
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	var frame bytes.Buffer
	for n := 0; ; n++ {
		asked := time.Now()
		r, err := Gather(ctx, nc, o)
		if ctx.Err() != nil {
			return nil
		}
		// Build the frame first and write it at once, so a terminal never
		// shows a cleared screen while monitors are being asked.
		frame.Reset()
		if tty {
			frame.WriteString(clearScreen)
		} else if n > 0 && !o.JSON {
			frame.WriteString("\n")
		}
		switch {
		case err != nil && o.JSON:
			r = &Report{Type: ReportType, Time: asked.UTC(), Subject: subject, Error: err.Error()}
		case err != nil:
			fmt.Fprintf(&frame, "%s  %v\n", asked.Format(time.TimeOnly), err)
		case !o.JSON:
			fmt.Fprintf(&frame, "as of %s, every %s\n\n", asked.Format(time.TimeOnly), every)
		}
		if r != nil {
			if err := render(&frame, r, o.JSON); err != nil {
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

// render writes r as a table, or with asJSON as one line of JSON.
func render(w io.Writer, r *Report, asJSON bool) error {
	if asJSON {
		return RenderJSON(w, r)
	}
	return Render(w, r)
}
