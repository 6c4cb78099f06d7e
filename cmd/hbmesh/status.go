package main

import (
	"context"
	"time"

	"github.com/hbmesh/hbmesh/internal/status"
)

// roundFlags are the flags status and watch share.
type roundFlags struct {
	Mesh     prefixFlag    `embed:""`
	JSON     bool          `help:"print each round as one line of JSON"`
	Wait     time.Duration `default:"${status_wait}" min:"1ms" max:"1h" placeholder:"DURATION" help:"how long to wait for monitors to answer"`
	Expect   int           `min:"0" max:"1048576" placeholder:"N" help:"the number of monitors the mesh runs: wait for that many to answer (up to --wait), warn when fewer do, and then fail any 'status --fail-on' (default 0: take whoever answers)"`
	Interval time.Duration `default:"${status_interval}" min:"10ms" max:"24h" placeholder:"DURATION" help:"time between redraws"`

	Conn connFlags `embed:"" group:"conn"`
	Log  logFlags  `embed:"" group:"log"`
}

// options are the status.Options the flags ask for.
func (r *roundFlags) options() status.Options {
	return status.Options{Prefix: r.Mesh.Prefix, JSON: r.JSON, Wait: r.Wait, Interval: r.Interval, Expect: r.Expect}
}

// statusCmd is `hbmesh status`.
type statusCmd struct {
	Watch  bool       `short:"w" help:"redraw every --interval until interrupted, like 'hbmesh watch'"`
	FailOn string     `placeholder:"LIST" help:"exit 1 after printing if any condition in the comma-separated LIST holds: ${fail_conditions}"`
	Round  roundFlags `embed:""`
}

func (c *statusCmd) Help() string {
	return `Ask every monitor of the mesh (every hbmesh monitor registers the hbmesh-monitor service) what it sees, and print one row per peer: the state the monitors agree on, or SPLIT with a ! and what each says, then one row per monitor. Exits 1 when no monitor answers within --wait, or, after printing, when a --fail-on condition holds (for cron or a Nagios check).`
}

func (c *statusCmd) examples() []string {
	return []string{
		"hbmesh status",
		"hbmesh status --fail-on dead,split,unready   # exit 1 if any",
		"hbmesh status --expect 3 --fail-on dead      # and if fewer than 3 monitors answer",
		"hbmesh status --json | jq '.peers[] | select(.disagree)'",
		"hbmesh status --user ops --password ... --inbox-prefix _INBOX_ops",
	}
}

func (c *statusCmd) Run(ctx context.Context, e *env) error {
	if e.given("interval") && !c.Watch {
		// Not implied --watch: a one-shot check, as from cron, must not
		// turn into one that never ends.
		return usagef("%s needs --watch (or 'hbmesh watch')", e.source("interval"))
	}
	o := c.Round.options()
	o.Watch, o.FailOn = c.Watch, c.FailOn
	return runStatus(ctx, e, "status", o, &c.Round)
}

// watchCmd is `hbmesh watch`: status, redrawn.
type watchCmd struct {
	Round roundFlags `embed:""`
}

func (c *watchCmd) Help() string {
	return `'hbmesh status' redrawn every --interval until interrupted: on a terminal the screen is cleared for each frame; into a pipe frames follow each other. Each frame starts with the time it was asked ("as of 15:04:05"). With --json each round is one line of JSON. A frame in which no monitor answers, or NATS is not connected, says so, and the watch goes on.`
}

func (c *watchCmd) examples() []string {
	return []string{"hbmesh watch", "hbmesh watch --interval 5s -s nats://nats:4222"}
}

func (c *watchCmd) Run(ctx context.Context, e *env) error {
	o := c.Round.options()
	o.Watch = true
	return runStatus(ctx, e, "watch", o, &c.Round)
}

// runStatus is `hbmesh status` and `hbmesh watch` once their flags are
// read.
func runStatus(ctx context.Context, e *env, name string, o status.Options, r *roundFlags) error {
	conn := &r.Conn
	if err := o.Validate(); err != nil {
		return err // a configuration error: a usage error to run
	}
	if err := conn.validate(e); err != nil {
		return err
	}
	log := r.Log.logger(e.stderr).With("cmd", name)
	if !o.Watch {
		// A watch goes on through anything; one round cannot succeed
		// without what the server refused.
		conn.refused = conn.refuseAny
	}
	cn, err := conn.dial(ctx, "hbmesh "+name, log)
	if err != nil {
		return err
	}
	defer cn.close()
	err = status.Run(cn.Context(), cn.Conn, o, e.stdout)
	if ferr := cn.failure(); ferr != nil {
		return ferr
	}
	return err
}
