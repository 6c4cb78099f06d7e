package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/hbmesh/hbmesh/internal/status"
)

func runStatus(ctx context.Context, e *env, args []string) error {
	return statusCommand(ctx, e, args, false)
}

func runWatch(ctx context.Context, e *env, args []string) error {
	return statusCommand(ctx, e, args, true)
}

// statusCommand is `hbmesh status` and `hbmesh watch`. The flags are all
// parsed here, so help, environment fallbacks and errors look like every
// other subcommand's; status.Run then gets only its own flags, rebuilt.
func statusCommand(ctx context.Context, e *env, args []string, watch bool) error {
	var (
		conn     connFlags
		logf     logFlags
		prefix   string
		asJSON   bool
		wait     = status.DefaultWait
		interval = status.DefaultInterval
		failOn   string
		expect   int
	)
	name, usage, desc := "status", "hbmesh status [--json] [--watch] [flags]", `
Ask every monitor of the mesh (every hbmesh monitor registers the
hbmesh-monitor service) what it sees, and print one row per peer: the state
the monitors agree on, or SPLIT with a ! and what each says, then one row
per monitor. Exits 1 when no monitor answers within --wait, or, after
printing, when a --fail-on condition holds (for cron or a Nagios check).`
	examples := []string{
		"hbmesh status",
		"hbmesh status --fail-on dead,split,unready   # exit 1 if any",
		"hbmesh status --expect 3 --fail-on dead      # and if fewer than 3 monitors answer",
		"hbmesh status --json | jq '.peers[] | select(.disagree)'",
		"hbmesh status --user ops --password ... --inbox-prefix _INBOX_ops",
	}
	if watch {
		name, usage, desc = "watch", "hbmesh watch [--interval 2s] [--json] [flags]", `
'hbmesh status' redrawn every --interval until interrupted: on a terminal
the screen is cleared for each frame; into a pipe frames follow each other.
Each frame starts with the time it was asked ("as of 15:04:05"). With
--json each round is one line of JSON. A frame in which no monitor answers,
or NATS is not connected, says so, and the watch goes on.`
		examples = []string{"hbmesh watch", "hbmesh watch --interval 5s -s nats://nats:4222"}
	}
	f := newFlags(name, usage, desc, examples)
	registerPrefix(f, &prefix)
	f.Bool(&asJSON, "json", "", false, "print one JSON document (one per line with --watch)")
	if !watch {
		f.Bool(&watch, "watch", "w", false, "redraw every --interval until interrupted, like 'hbmesh watch'")
		f.String(&failOn, "fail-on", "", "", "exit 1 after printing if any condition in the comma `list` holds: "+
			strings.Join(status.FailConditions(), ", "))
	}
	f.Var(durationFlag{&wait, time.Millisecond, time.Hour}, "wait", "", "`duration` to wait for monitors to answer")
	f.Var(intFlag{&expect, 0, 1 << 20}, "expect", "", "the `number` of monitors the mesh runs: wait for that many to answer (up to --wait),\nwarn when fewer do, and then fail any --fail-on (default 0: take whoever answers)")
	intervalUsage := "`duration` between redraws"
	if !watch {
		intervalUsage += "; needs --watch"
	}
	f.Var(durationFlag{&interval, 10 * time.Millisecond, 24 * time.Hour}, "interval", "", intervalUsage)
	conn.register(f, 5*time.Second, "connect `timeout`")
	logf.level = "warn" // stdout is the answer; connection chatter is noise
	logf.register(f)
	if err := f.parse(e, args); err != nil {
		return err
	}
	if f.isSet("interval") && !watch {
		// Not implied --watch: a one-shot check, as from cron, must not
		// turn into one that never ends.
		return usagef("--interval needs --watch (or 'hbmesh watch')")
	}
	if _, err := status.ParseFailOn(failOn); err != nil {
		return usagef("--fail-on: %v", err)
	}
	if failOn != "" && watch {
		return usagef("--fail-on needs a single round, not --watch")
	}
	if err := conn.validate(e); err != nil {
		return err
	}
	sargs := []string{"--prefix=" + prefix, "--wait=" + wait.String(), "--expect=" + strconv.Itoa(expect)}
	if asJSON {
		sargs = append(sargs, "--json")
	}
	if watch {
		sargs = append(sargs, "--watch", "--interval="+interval.String())
	}
	if failOn != "" {
		sargs = append(sargs, "--fail-on="+failOn)
	}
	log := logf.logger(e.stderr).With("cmd", name)
	cn, err := conn.dial(ctx, "hbmesh "+name, log)
	if err != nil {
		return err
	}
	defer cn.close()
	// The flags were checked above; status.Run's own usage text would
	// only duplicate ours, so it goes nowhere.
	err = status.Run(cn.Context(), cn.Conn, sargs, e.stdout, io.Discard)
	if ferr := cn.failure(); ferr != nil {
		return ferr
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return errHelpShown
	case errors.Is(err, status.ErrUsage):
		return usagef("%v", err)
	}
	return err
}
