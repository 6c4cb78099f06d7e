package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/internal/printable"
	"github.com/hbmesh/hbmesh/wire"
)

// probeCmd is `hbmesh probe`.
type probeCmd struct {
	ID   string     `arg:"" type:"id" help:"the node to probe"`
	Mesh prefixFlag `embed:""`
	Conn connFlags  `embed:"" group:"conn"`
	Log  logFlags   `embed:"" group:"log"`
}

func (c *probeCmd) Help() string {
	return `Send one probe to node ID on <prefix>.<ID>.probe and print its answer: status, boot id, latest seq and round-trip time. Exits 0 when the node answers and 1 when nothing does (no such node, or no answer in --timeout) or the answer is malformed or about another node.`
}

func (c *probeCmd) examples() []string {
	return []string{
		"hbmesh probe web-1",
		"hbmesh probe web-1 --timeout 500ms -s nats://nats:4222",
	}
}

func (c *probeCmd) Run(ctx context.Context, e *env) error {
	if err := c.Conn.validate(e); err != nil {
		return err
	}
	id, prefix, timeout := c.ID, c.Mesh.Prefix, c.Conn.Timeout
	log := c.Log.logger(e.stderr).With("cmd", "probe")
	c.Conn.refused = c.Conn.refuseAny
	cn, err := c.Conn.dial(ctx, "hbmesh probe", log)
	if err != nil {
		return err
	}
	defer cn.close()

	subj := wire.MustSubjects(prefix).Probe(id)
	rctx, cancel := context.WithTimeout(cn.Context(), timeout)
	defer cancel()
	start := time.Now()
	msg, err := cn.RequestWithContext(rctx, subj, nil)
	rtt := time.Since(start)
	switch {
	case err == nil:
	case errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("%s: no answer: no node listens on %s", id, subj)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return fmt.Errorf("%s: no answer within %v on %s", id, timeout, subj)
	default:
		if ferr := cn.failure(); ferr != nil {
			return ferr
		}
		return fmt.Errorf("%s: probe %s: %w", id, subj, err)
	}
	b, err := wire.DecodeProbeReply(msg.Data)
	if err != nil {
		return fmt.Errorf("%s: malformed answer: %w", id, err)
	}
	if b.ID != id {
		// As a monitor does (probe_mismatch): an answer about another
		// node says nothing about this one.
		return fmt.Errorf("%s: the answer is about %q, not the node probed", id, b.ID)
	}
	// Whoever answers chooses the host and boot, which may hold any UTF-8:
	// escaped, they cannot drive the terminal or print a second line.
	fmt.Fprintf(e.stdout, "%s: %s, host %s, boot %s, seq %d, interval %v, rtt %s\n",
		id, b.Status, printable.String(b.Host), printable.String(b.Boot), b.Seq, time.Duration(b.IntervalMS)*time.Millisecond, fmtRTT(rtt))
	return nil
}

// fmtRTT prints a round trip with microsecond precision: 1.234ms.
func fmtRTT(d time.Duration) string {
	return d.Round(time.Microsecond).String()
}
