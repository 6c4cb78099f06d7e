package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/hbmesh/hbmesh/node"
	"github.com/hbmesh/hbmesh/wire"
)

// idFlag is a node id, checked with wire.ValidateID.
type idFlag struct{ s *string }

func (v idFlag) String() string {
	if v.s == nil {
		return ""
	}
	return *v.s
}

func (v idFlag) Set(s string) error {
	if err := wire.ValidateID(s); err != nil {
		return err
	}
	*v.s = s
	return nil
}

// prefixFlag is a subject prefix, checked with wire.ValidatePrefix.
type prefixFlag struct{ s *string }

func (v prefixFlag) String() string {
	if v.s == nil {
		return ""
	}
	return *v.s
}

func (v prefixFlag) Set(s string) error {
	if err := wire.ValidatePrefix(s); err != nil {
		return err
	}
	*v.s = s
	return nil
}

func registerPrefix(f *flags, p *string) {
	*p = wire.DefaultPrefix
	f.Var(prefixFlag{p}, "prefix", "", "subject `prefix`: beats go to <prefix>.<id>")
}

func runNode(ctx context.Context, e *env, args []string) error {
	host, _ := os.Hostname()
	cfg := node.DefaultConfig()
	var (
		conn      connFlags
		logf      logFlags
		dropBeats float64
	)
	cfg.ID = wire.IDFromHostname(host)
	cfg.Labels = map[string]string{}
	f := newFlags("node", "hbmesh node [--id ID] [--interval 1s] [--label k=v]... [flags]", `
Publish a heartbeat for this process every --interval on <prefix>.<id> and
answer probes on <prefix>.<id>.probe, until SIGINT or SIGTERM; then say
goodbye (so monitors report "left", not "dead") and exit 0.`, []string{
		"hbmesh node --id web-1 --label role=web --label zone=eu-1",
		"NATS_URL=nats://nats.internal:4222 hbmesh node --interval 500ms",
	})
	f.Var(idFlag{&cfg.ID}, "id", "", "node `ID`, one subject token: no '.', '*', '>' or whitespace; defaults to the hostname")
	f.Var(durationFlag{&cfg.Interval, node.MinInterval, node.MaxInterval}, "interval", "",
		fmt.Sprintf("beat `interval`, within [%v, %v]", node.MinInterval, node.MaxInterval))
	f.Var(labelsFlag{cfg.Labels}, "label", "", "label `key=value` carried in every beat; repeatable")
	registerPrefix(f, &cfg.Prefix)
	// Fault injection for tests and demos: withhold this fraction of beats
	// at random (probes are still answered, goodbyes always sent).
	f.Var(floatFlag{&dropBeats, 0, 1}, "drop-beats", "", "fault injection: drop this `fraction` of beats at random")
	f.Hide("drop-beats")
	conn.register(f, 5*time.Second, "connect `timeout`")
	logf.register(f)
	if err := f.parse(e, args); err != nil {
		return err
	}
	if err := conn.validate(e); err != nil {
		return err
	}
	log := logf.logger(e.stderr).With("cmd", "node")

	cfg.Version = version
	cfg.Logger = log
	if dropBeats > 0 {
		frac := dropBeats
		cfg.DropBeat = func(uint64) bool { return rand.Float64() < frac }
	}
	if len(cfg.Labels) == 0 {
		cfg.Labels = nil
	}
	name, err := conn.nodeConnName(cfg.Prefix, cfg.ID)
	if err != nil {
		return err
	}
	cn, err := conn.dial(ctx, name, log)
	if err != nil {
		return err
	}
	defer cn.close()
	n, err := node.New(cn.Conn, cfg)
	if err != nil {
		return err
	}
	log.Info("node beating", "peer", n.ID(), "boot", n.Boot(), "subject", wire.MustSubjects(cfg.Prefix).Beat(n.ID()), "interval", cfg.Interval)
	err = n.Run(cn.Context())
	if ferr := cn.failure(); ferr != nil {
		return ferr
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Info("node stopped", "peer", n.ID(), "seq", n.Seq())
	return nil
}
