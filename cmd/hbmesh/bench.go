package main

import (
	"context"
	"time"

	"github.com/hbmesh/hbmesh/internal/bench"
)

// benchCmd is `hbmesh bench`: each benchmark is a subcommand, whose flags
// become package bench's options.
type benchCmd struct {
	Ingest    benchIngestCmd    `cmd:"" help:"monitor vs bare subscriber: messages processed per second"`
	Detect    benchDetectCmd    `cmd:"" help:"dead verdict lateness with N simulated nodes and K silent kills"`
	Scale     benchScaleCmd     `cmd:"" help:"monitor CPU, heap, RSS and ns per beat at N peers; churn"`
	Probe     benchProbeCmd     `cmd:"" help:"probe round trip through node.Node vs bare request/reply"`
	Node      benchNodeCmd      `cmd:"" help:"a real hbmesh node process: RSS idle and CPU per beat, from /proc"`
	Publisher benchPublisherCmd `cmd:"" name:"_publisher" hidden:"" help:"the scale benchmark's publisher child"`
	Idle      benchIdleCmd      `cmd:"" name:"_idle" hidden:"" help:"the node benchmark's idle baseline: nothing, until interrupted"`
}

func (c *benchCmd) Help() string {
	return "Each benchmark prints progress on stderr and one JSON line on stdout, and starts its own NATS server on a random loopback port unless given --server. The figures and what bounds them are in docs/PERFORMANCE.md."
}

func (c *benchCmd) examples() []string {
	return []string{
		"hbmesh bench ingest --quick",
		"hbmesh bench detect --crash",
		"hbmesh bench scale -n 1000000 --interval 10s --churn 0",
		"hbmesh bench node --hello bin/bench/gohello --bare bin/bench/barenode",
	}
}

// benchCommon are the flags every benchmark takes.
type benchCommon struct {
	Server     string `short:"s" placeholder:"URL" help:"NATS server URL; empty starts an embedded server on a random loopback port"`
	Quick      bool   `help:"small and short run for CI; overrides the size flags"`
	CPUProfile string `name:"cpuprofile" placeholder:"FILE" help:"write a CPU profile of this process (server, publisher and consumers alike) to FILE"`
}

func (c benchCommon) options() bench.Common {
	return bench.Common{URL: c.Server, Quick: c.Quick, CPUProfile: c.CPUProfile}
}

type benchIngestCmd struct {
	Common   benchCommon `embed:""`
	Nodes    int         `short:"n" default:"10000" placeholder:"N" help:"distinct node ids"`
	Batches  int         `default:"10" placeholder:"N" help:"beats per id in each parked backlog; M = nodes*batches"`
	Windows  int         `default:"3" placeholder:"N" help:"timed backlogs per consumer per round"`
	Rounds   int         `default:"9" placeholder:"N" help:"rounds, each measuring both consumers"`
	Verbose  bool        `short:"v" help:"print each backlog's rate on stderr"`
	BareChan bool        `help:"the bare subscriber drains a channel subscription, as the monitor does, instead of counting in nats.go's callback"`
	Live     bool        `help:"time each backlog from the first publish, with the consumer reading as the publisher sends, instead of parking it at the server first"`
}

func (c *benchIngestCmd) Help() string {
	return `Publish backlogs of beats from --nodes ids and time how fast the real monitor drains them, against a bare subscriber that only counts, in alternating rounds of the same run. The summary's ratio is the median of the rounds' monitor/bare ratios; any beat dropped or rejected fails the run.`
}

func (c *benchIngestCmd) examples() []string {
	return []string{
		"hbmesh bench ingest",
		"hbmesh bench ingest --live          # the consumer reads while one publisher sends",
		"hbmesh bench ingest --cpuprofile ingest.pprof",
	}
}

func (c *benchIngestCmd) Run(ctx context.Context, e *env) error {
	return runBench(ctx, e, bench.IngestOptions{Common: c.Common.options(), N: c.Nodes, Batches: c.Batches, Windows: c.Windows,
		Rounds: c.Rounds, Verbose: c.Verbose, BareChan: c.BareChan, Live: c.Live})
}

type benchDetectCmd struct {
	Common    benchCommon     `embed:""`
	Nodes     int             `short:"n" default:"10000" placeholder:"N" help:"simulated nodes"`
	Kills     int             `short:"k" placeholder:"K" help:"nodes killed (default 100; 2000 with --crash, 1000 per interval)"`
	Interval  time.Duration   `default:"1s" placeholder:"DURATION" help:"beat interval of every node"`
	Window    time.Duration   `placeholder:"DURATION" help:"kills are spread over this window after warm-up (default 5 intervals; with --crash, the longest interval)"`
	Seed      uint64          `default:"1" placeholder:"N" help:"random seed for kill choice and moments"`
	Crash     bool            `help:"crash the victims: each beats on a connection of its own, closed at its kill (no goodbye, no reconnect), so the server publishes a DISCONNECT advisory; two monitors measure crash → dead through the crash fast path and through the timeout path in the same run"`
	Intervals []time.Duration `placeholder:"DURATION,..." default:"1s,10s" help:"with --crash: the fleet's beat intervals, comma separated; peers and victims are spread evenly over them"`
	Bounced   int             `default:"200" placeholder:"N" help:"with --crash: live nodes, spread evenly over the intervals, each on a connection of its own that the embedded server kicks once while the victims die; they reconnect, and a dead verdict for one is a false death (0 with -s)"`
}

func (c *benchDetectCmd) Help() string {
	return `Simulate --nodes nodes beating every --interval, stop --kills of them at random moments without a goodbye, and measure how late each dead verdict comes after the kill and after the last beat sent; false deaths and suspicions are counted. With --crash each victim beats on a connection of its own, which is closed at its kill, and two monitors, one with the crash fast path and one without, time crash → dead side by side.`
}

func (c *benchDetectCmd) examples() []string {
	return []string{
		"hbmesh bench detect",
		"hbmesh bench detect -n 100000",
		"hbmesh bench detect --crash --intervals 1s,10s",
	}
}

func (c *benchDetectCmd) Run(ctx context.Context, e *env) error {
	k := c.Kills
	if k == 0 {
		k = 100
		if c.Crash {
			k = 2000
		}
	}
	return runBench(ctx, e, bench.DetectOptions{Common: c.Common.options(), N: c.Nodes, K: k, Interval: c.Interval, Window: c.Window, Seed: c.Seed,
		Crash: c.Crash, Intervals: c.Intervals, Bounced: c.Bounced})
}

type benchScaleCmd struct {
	Common        benchCommon       `embed:""`
	Nodes         []int             `short:"n" default:"10000,100000" placeholder:"N,..." help:"peer counts, comma separated (1000000 needs a bigger machine than 2 cores)"`
	Measure       time.Duration     `default:"5s" placeholder:"DURATION" help:"CPU measuring window per peer count"`
	Interval      time.Duration     `default:"1s" placeholder:"DURATION" help:"the simulated nodes' beat interval (1000000 peers at 1s need more than 2 cores; at 10s they fit)"`
	Churn         int               `default:"1000000" placeholder:"IDS" help:"distinct ids in the churn run; 0 skips it"`
	ChurnMaxPeers int               `default:"100000" placeholder:"N" help:"MaxPeers in the churn run"`
	Exe           string            `placeholder:"FILE" help:"executable to re-run as the publisher child (default: this one)"`
	Label         map[string]string `type:"labels" placeholder:"KEY=VALUE" help:"label carried in every simulated beat, as a node's --label; repeatable"`
}

func (c *benchScaleCmd) Help() string {
	return `Measure the monitor at each peer count of --nodes: CPU cores over --measure, heap per peer, RSS, and the bytes it reads, with the simulated fleet and its NATS server in a child process so that this process holds what a production monitor holds. Then, unless --churn is 0, send one beat from each of --churn distinct ids through a table of --churn-max-peers.`
}

func (c *benchScaleCmd) examples() []string {
	return []string{
		"hbmesh bench scale",
		"hbmesh bench scale -n 100000 --churn 0 --label role=web --label zone=eu-1",
	}
}

func (c *benchScaleCmd) Run(ctx context.Context, e *env) error {
	return runBench(ctx, e, bench.ScaleOptions{Common: c.Common.options(), Nodes: c.Nodes, Measure: c.Measure, Interval: c.Interval,
		Churn: c.Churn, ChurnMaxPeers: c.ChurnMaxPeers, Exe: c.Exe, Labels: c.Label})
}

type benchProbeCmd struct {
	Common benchCommon `embed:""`
	Count  int         `default:"5000" placeholder:"N" help:"requests to each responder"`
}

func (c *benchProbeCmd) Help() string {
	return `Send --count probes to a node.Node and as many requests to a bare responder of the same reply size, alternating one by one, and compare their round trips; the ratio is of the medians.`
}

func (c *benchProbeCmd) examples() []string {
	return []string{"hbmesh bench probe", "hbmesh bench probe --count 20000"}
}

func (c *benchProbeCmd) Run(ctx context.Context, e *env) error {
	return runBench(ctx, e, bench.ProbeOptions{Common: c.Common.options(), Count: c.Count})
}

type benchNodeCmd struct {
	Common   benchCommon   `embed:""`
	Interval time.Duration `default:"1s" placeholder:"DURATION" help:"the node's beat interval"`
	Measure  time.Duration `default:"1m" placeholder:"DURATION" help:"measuring window, after a warm-up of 5 intervals"`
	Exe      string        `placeholder:"FILE" help:"hbmesh executable to run as the node and the idle baseline (default: this one)"`
	Hello    string        `placeholder:"FILE" help:"baseline: a Go hello world that sleeps (bench/cmd/gohello)"`
	Bare     string        `placeholder:"FILE" help:"baseline: a bare nats.go client (bench/cmd/barenode)"`
	NoIdle   bool          `help:"leave out the idle baseline, for an --exe without 'bench _idle'"`
}

func (c *benchNodeCmd) Help() string {
	return `Run a real 'hbmesh node' process, with this binary doing nothing beside it as a baseline (and, given --hello and --bare, a Go hello world and a bare nats.go client), and measure each one's RSS and CPU per beat over --measure from /proc. Linux only. 'make bench-node' builds the baselines and runs it with them.`
}

func (c *benchNodeCmd) examples() []string {
	return []string{
		"hbmesh bench node",
		"hbmesh bench node --hello bin/bench/gohello --bare bin/bench/barenode",
		"hbmesh bench node --exe ./other-hbmesh --no-idle",
	}
}

func (c *benchNodeCmd) Run(ctx context.Context, e *env) error {
	return runBench(ctx, e, bench.NodeOptions{Common: c.Common.options(), Interval: c.Interval, Measure: c.Measure,
		Exe: c.Exe, Hello: c.Hello, Bare: c.Bare, NoIdle: c.NoIdle})
}

// benchIdleCmd is the node benchmark's idle baseline: this binary, its
// package initialisation done, doing nothing.
type benchIdleCmd struct{}

func (c *benchIdleCmd) Run(ctx context.Context, _ *env) error {
	<-ctx.Done()
	return nil
}

// benchPublisherCmd is the scale benchmark's child process: its options
// come in the environment, from the parent.
type benchPublisherCmd struct{}

func (c *benchPublisherCmd) Run(ctx context.Context, e *env) error {
	return bench.Child(ctx, e.getenv(bench.ChildEnv), e.stdout)
}

// runBench runs b. Options out of range are configuration errors, which
// run reports as usage errors.
func runBench(ctx context.Context, e *env, b bench.Benchmark) error {
	return bench.Run(ctx, b, e.stdout, e.stderr)
}
