package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/node"
	"github.com/hbmesh/hbmesh/wire"
)

// ProbeOptions are the options of the probe benchmark.
type ProbeOptions struct {
	Common
	// Count is the number of requests to each responder.
	Count int
}

type probeResult struct {
	Bench       string  `json:"bench"`
	Requests    int     `json:"requests_each"`
	ReplyBytes  int     `json:"reply_bytes"`
	P50HbmeshUS float64 `json:"p50_hbmesh_us"`
	P99HbmeshUS float64 `json:"p99_hbmesh_us"`
	P50BareUS   float64 `json:"p50_bare_us"`
	P99BareUS   float64 `json:"p99_bare_us"`
	Ratio       float64 `json:"ratio"`
}

// runProbe compares a probe of a node.Node (request on the probe subject,
// reply decoded with the same strict decoder the monitor uses) with a bare
// NATS request/reply to a responder that returns a fixed payload of the
// same size. Requests alternate between the two, one at a time.
func (o ProbeOptions) run(ctx context.Context, e *env) error {
	c := &o.Common
	count := &o.Count
	if c.Quick {
		*count = 300
	}
	if *count < 1 {
		return invalid.Field("--count", *count, "must be positive")
	}
	url, stop, err := c.server()
	if err != nil {
		return err
	}
	defer stop()
	nodeNC, err := connect(url, "bench-probe-node")
	if err != nil {
		return err
	}
	defer nodeNC.Close()
	bareNC, err := connect(url, "bench-probe-bare")
	if err != nil {
		return err
	}
	defer bareNC.Close()
	reqNC, err := connect(url, "bench-probe-requester")
	if err != nil {
		return err
	}
	defer reqNC.Close()

	ncfg := node.DefaultConfig()
	ncfg.ID, ncfg.Host = "probe-target", "probe-target.example.com"
	nd, err := node.New(nodeNC, ncfg)
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	nodeErr := make(chan error, 1)
	go func() { nodeErr <- nd.Run(runCtx) }()
	defer func() { cancel(); <-nodeErr }()

	subj := wire.MustSubjects(ncfg.Prefix)
	probeSubj := subj.Probe(ncfg.ID)
	var dec wire.Decoder
	var raw wire.RawBeat
	var reply []byte
	if err := waitFor(ctx, 10*time.Second, "the node's probe subscription", func() bool {
		msg, err := reqNC.Request(probeSubj, nil, 100*time.Millisecond)
		if err == nil {
			reply = msg.Data
		}
		return err == nil
	}); err != nil {
		return err
	}
	fixed := append([]byte(nil), reply...) // same size as the node's answer
	const bareSubj = "bench.probe.bare"
	sub, err := bareNC.Subscribe(bareSubj, func(m *nats.Msg) { _ = m.Respond(fixed) })
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	if err := bareNC.Flush(); err != nil {
		return err
	}

	hb := make([]float64, 0, *count)
	bare := make([]float64, 0, *count)
	for range *count {
		t := time.Now()
		msg, err := reqNC.Request(probeSubj, nil, time.Second)
		if err != nil {
			return fmt.Errorf("bench: probe %q: %w", probeSubj, err)
		}
		if err := dec.Decode(msg.Data, &raw); err != nil {
			return fmt.Errorf("bench: probe reply: %w", err)
		}
		hb = append(hb, float64(time.Since(t))/1e3)

		t = time.Now()
		if _, err := reqNC.Request(bareSubj, nil, time.Second); err != nil {
			return fmt.Errorf("bench: bare request: %w", err)
		}
		bare = append(bare, float64(time.Since(t))/1e3)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	res := probeResult{
		Bench: "probe", Requests: *count, ReplyBytes: len(fixed),
		P50HbmeshUS: round3(quantile(hb, .5)), P99HbmeshUS: round3(quantile(hb, .99)),
		P50BareUS: round3(quantile(bare, .5)), P99BareUS: round3(quantile(bare, .99)),
	}
	res.Ratio = round3(res.P50HbmeshUS / res.P50BareUS)
	return e.emit(res)
}
