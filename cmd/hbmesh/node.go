package main

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"time"

	"github.com/hbmesh/hbmesh/node"
	"github.com/hbmesh/hbmesh/wire"
)

// prefixFlag is the mesh's subject prefix, shared by every command that
// talks to the mesh.
type prefixFlag struct {
	Prefix string `type:"prefix" placeholder:"PREFIX" default:"${prefix}" env:"HBMESH_PREFIX" help:"subject prefix: beats go to <prefix>.<id>"`
}

// nodeCmd is `hbmesh node`.
type nodeCmd struct {
	ID       string            `type:"id" placeholder:"ID" env:"HBMESH_ID" help:"node ID, one subject token: no '.', '*', '>' or whitespace; defaults to the hostname"`
	Interval time.Duration     `placeholder:"DURATION" default:"${interval}" min:"100ms" max:"1h" env:"HBMESH_INTERVAL" help:"beat interval"`
	Label    map[string]string `type:"labels" placeholder:"KEY=VALUE" env:"HBMESH_LABELS" help:"label carried in every beat; repeatable (the variable: comma separated)"`
	Mesh     prefixFlag        `embed:""`
	// Fault injection for tests and demos: withhold this fraction of beats
	// at random (probes are still answered, goodbyes always sent).
	DropBeats float64 `hidden:"" min:"0" max:"1" placeholder:"FRACTION" help:"fault injection: drop this fraction of beats at random"`

	Conn connFlags `embed:"" group:"conn"`
	Log  logFlags  `embed:"" group:"log"`
}

func (c *nodeCmd) Help() string {
	return `Publish a heartbeat for this process every --interval on <prefix>.<id> and answer probes on <prefix>.<id>.probe, until SIGINT, SIGTERM or SIGHUP; then say goodbye (so monitors report "left", not "dead") and exit 0.`
}

func (c *nodeCmd) examples() []string {
	return []string{
		"hbmesh node --id web-1 --label role=web --label zone=eu-1",
		"NATS_URL=nats://nats.internal:4222 hbmesh node --interval 500ms",
		"HBMESH_ID=web-1 HBMESH_LABELS=role=web,zone=eu-1 hbmesh node",
	}
}

func (c *nodeCmd) Run(ctx context.Context, e *env) error {
	if err := c.Conn.validate(e); err != nil {
		return err
	}
	log := c.Log.logger(e.stderr).With("cmd", "node")
	cfg := node.DefaultConfig()
	if c.ID != "" {
		cfg.ID = c.ID
	} else {
		host, _ := os.Hostname()
		cfg.ID = wire.IDFromHostname(host)
	}
	cfg.Interval, cfg.Prefix, cfg.Version, cfg.Logger = c.Interval, c.Mesh.Prefix, buildVersion().Version, log
	if len(c.Label) > 0 {
		cfg.Labels = c.Label
	}
	if frac := c.DropBeats; frac > 0 {
		cfg.DropBeat = func(uint64) bool { return rand.Float64() < frac }
	}
	c.Conn.refused = c.refused(cfg.Prefix, cfg.ID, e)
	name, err := c.Conn.nodeConnName(cfg.Prefix, cfg.ID)
	if err != nil {
		return err
	}
	cn, err := c.Conn.dial(ctx, name, log)
	if err != nil {
		return err
	}
	defer cn.close()
	n, err := node.New(cn.Conn, cfg)
	if err != nil {
		return err
	}
	log.Info("node beating", "peer", n.ID(), "boot", n.Boot(), "subject", wire.MustSubjects(cfg.Prefix).Beat(n.ID()), "interval", cfg.Interval)
	releaseStartupMemory() // started: what got here is not needed again
	// ctx, not cn.Context(): a connection given up (a refusal, an
	// authorization failure) is closed, which ends Run without a goodbye.
	// A cancelled cn.Context() could win that race and log "goodbye not
	// sent: not connected to NATS", a network fault, before the refusal.
	err = n.Run(ctx)
	if ferr := cn.failure(); ferr != nil {
		return ferr
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Info("node stopped", "peer", n.ID(), "seq", n.Seq())
	return nil
}

// refused says why node id stops when the server refuses it its own
// subjects: it cannot beat, or cannot be probed, and no retry changes
// that. With credentials from a template (docs/SECURITY.md) this is
// almost always an id that is not the credentials' user name.
func (c *nodeCmd) refused(prefix, id string, e *env) func(string) error {
	subj := wire.MustSubjects(prefix)
	beat, probe := subj.Beat(id), subj.Probe(id)
	from := "the id derived from the host name; set --id or $HBMESH_ID"
	if e.given("id") {
		from = "the id from " + e.source("id")
	}
	return func(v string) error {
		if v != publishRefused(beat) && v != subscribeRefused(probe) {
			return nil
		}
		what := "beats"
		if v == subscribeRefused(probe) {
			what = "probes"
		}
		return refusedf("the server's permissions refuse node %q its %s (%s): allow %s to publish %s and subscribe to %s, or, with per-host credentials, make the id the user's name (%s)",
			id, what, v, c.Conn.principal(), beat, probe, from)
	}
}
