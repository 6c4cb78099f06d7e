package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/hbmesh/hbmesh/internal/pause"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/wire"
)

// PublisherCommand is the hidden subcommand of `hbmesh bench` that the
// scale bench re-executes itself as, so that the simulated fleet and the
// server run in another process and the measuring process's CPU is the
// monitor's alone. The command hands ChildEnv's value to [Child].
const PublisherCommand = "_publisher"

// ChildEnv is set in the environment of the publisher child to its
// options, as JSON. A test binary's TestMain uses it to route the child to
// [Child], since it does not parse `bench _publisher` the way the hbmesh
// command does.
const ChildEnv = "HBMESH_BENCH_CHILD"

// ScaleOptions are the options of the scale benchmark.
type ScaleOptions struct {
	Common
	// Nodes are the peer counts to measure, one run each (1000000 needs a
	// bigger machine than 2 cores).
	Nodes []int
	// Measure is the CPU measuring window per run.
	Measure time.Duration
	// Interval is the simulated nodes' beat interval (1000000 peers at 1s
	// need more than 2 cores; at 10s they fit).
	Interval time.Duration
	// Churn is the number of distinct ids in the churn run; 0 skips it.
	Churn int
	// ChurnMaxPeers is MaxPeers in the churn run.
	ChurnMaxPeers int
	// Labels are carried by every simulated beat, as a real node's
	// --label; nil for none.
	Labels map[string]string
	// Exe is the executable to re-run as the publisher child. Default: this
	// one.
	Exe string
}

// publisherOptions are the publisher child's, passed in ChildEnv.
type publisherOptions struct {
	URL      string            `json:"url,omitempty"`
	N        int               `json:"n"`
	Interval time.Duration     `json:"interval"`
	Labels   map[string]string `json:"labels,omitempty"`
}

type scaleRun struct {
	N                 int     `json:"n"`
	IntervalMS        int64   `json:"interval_ms"`
	Cores             float64 `json:"cores"`
	NsPerBeat         float64 `json:"ns_per_beat"`
	IdleCores         float64 `json:"idle_cores"`
	NsPerBeatOverIdle float64 `json:"ns_per_beat_over_idle"`
	BeatsPerSec       float64 `json:"beats_per_sec"`
	KeptUp            bool    `json:"kept_up"`
	HeapBytes         uint64  `json:"heap_bytes"`
	BaselineHeap      uint64  `json:"baseline_heap_bytes"`
	BytesPerPeer      float64 `json:"bytes_per_peer"`
	RSSBytes          uint64  `json:"rss_bytes"`
	// BeatBytes is the mean beat payload the monitor received;
	// InBytesPerSec the beat payloads per second (nats.go's count), and
	// ReadBytesPerSec all the monitor read from its NATS connection per
	// second, protocol framing included (rchar in /proc/self/io): what one
	// monitor's link to its server carries.
	BeatBytes       float64 `json:"beat_bytes"`
	InBytesPerSec   float64 `json:"in_bytes_per_sec"`
	ReadBytesPerSec float64 `json:"read_bytes_per_sec,omitempty"`
	Alive           int     `json:"alive"`
	NotAlive        int     `json:"not_alive"`
}

type churnRun struct {
	IDs       int      `json:"ids"`
	MaxPeers  int      `json:"max_peers"`
	HeapBytes []uint64 `json:"heap_bytes_at_25_50_75_100"`
	Growth    float64  `json:"growth_100_vs_25"`
	Evicted   uint64   `json:"evicted"`
	Peers     int      `json:"peers_at_end"`
}

type scaleResult struct {
	Bench     string            `json:"bench"`
	Method    string            `json:"method"`
	MeasureS  float64           `json:"measure_s"`
	Labels    map[string]string `json:"labels,omitempty"`
	Runs      []scaleRun        `json:"runs"`
	Churn     *churnRun         `json:"churn,omitempty"`
	CPUs      int               `json:"gomaxprocs"`
	GoVersion string            `json:"go_version"`
}

// runScale measures the monitor at N peers beating at 1 Hz. The fleet and,
// unless -s is given, the nats-server run in a child process (this same
// executable in the hidden _publisher mode), so getrusage in this process
// counts exactly what a production monitor process pays: the NATS client's
// reads and parsing, the monitor, the Go runtime and GC.
func (o ScaleOptions) run(ctx context.Context, e *env) error {
	c := &o.Common
	sizes, measure, interval, churn, churnMax, exe := o.Nodes, &o.Measure, &o.Interval, &o.Churn, &o.ChurnMaxPeers, &o.Exe
	if c.Quick {
		sizes, *measure, *churn, *churnMax, *interval = []int{1000, 5000}, time.Second, 20000, 5000, time.Second
	}
	switch {
	case *interval < time.Millisecond:
		return invalid.Field("--interval", *interval, "is below 1ms")
	case *measure <= 0:
		return invalid.Field("--measure", *measure, "must be positive")
	case len(sizes) == 0:
		return invalid.Field("--nodes", nil, "names no peer count")
	}
	for _, n := range sizes {
		if n < 1 {
			return invalid.Field("--nodes", n, "is not a peer count: each must be at least 1")
		}
	}
	if *exe == "" {
		p, err := os.Executable()
		if err != nil {
			return fmt.Errorf("bench: scale: find own executable: %w", err)
		}
		*exe = p
	}
	res := scaleResult{Bench: "scale", MeasureS: measure.Seconds(), GoVersion: runtimeVersion(), CPUs: gomaxprocs(), Labels: o.Labels,
		Method: "fleet and server in a child process; cores = getrusage(self) delta / wall time"}
	for _, n := range sizes {
		r, err := scaleOne(ctx, e, c, *exe, n, *interval, *measure, o.Labels)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "scale n=%d: %.3f cores, %.0f ns/beat, %.0f B/peer, rss %d MiB, %.0f B/beat, %.0f kB/s read\n",
			n, r.Cores, r.NsPerBeat, r.BytesPerPeer, r.RSSBytes>>20, r.BeatBytes, r.ReadBytesPerSec/1000)
		res.Runs = append(res.Runs, r)
	}
	if *churn > 0 {
		cr, err := churnRunOnce(ctx, e, c, *churn, *churnMax)
		if err != nil {
			return err
		}
		res.Churn = cr
	}
	return e.emit(res)
}

func scaleOne(ctx context.Context, e *env, c *Common, exe string, n int, interval, measure time.Duration, labels map[string]string) (scaleRun, error) {
	r := scaleRun{N: n, IntervalMS: interval.Milliseconds()}
	spec, err := json.Marshal(publisherOptions{URL: c.URL, N: n, Interval: interval, Labels: labels})
	if err != nil {
		return r, err
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(cctx, exe, "bench", PublisherCommand)
	cmd.Env = append(os.Environ(), ChildEnv+"="+string(spec))
	cmd.Stderr = e.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return r, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return r, err
	}
	if err := cmd.Start(); err != nil {
		return r, fmt.Errorf("bench: start publisher child: %w", err)
	}
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		return r, fmt.Errorf("bench: publisher child printed no URL")
	}
	url, ok := strings.CutPrefix(lines.Text(), "url ")
	if !ok {
		return r, fmt.Errorf("bench: publisher child: unexpected %q", lines.Text())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()

	nc, err := connect(url, "bench-scale-monitor")
	if err != nil {
		return r, err
	}
	defer nc.Close()
	cfg := monitor.DefaultConfig()
	cfg.MaxPeers = max(cfg.MaxPeers, n)
	m, err := monitor.New(nc, cfg)
	if err != nil {
		return r, err
	}
	runCtx, stopMon := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- m.Run(runCtx) }()
	defer func() { stopMon(); <-runErr }()
	if err := waitFor(ctx, 10*time.Second, "the monitor to be ready", func() bool { return m.Ready() == nil }); err != nil {
		return r, err
	}
	r.BaselineHeap = heapInuse()
	// The idle cost (sweep ticker, self checks, runtime) with no peer at
	// all, over the same window, separates the fixed cost from the
	// per-beat cost.
	i0, it0 := cpuTime(), time.Now()
	if err := pause.For(ctx, measure); err != nil {
		return r, err
	}
	r.IdleCores = round3(float64(cpuTime()-i0) / float64(time.Since(it0)))
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		return r, fmt.Errorf("bench: start the fleet: %w", err)
	}
	// Every peer is seen within one interval; the second makes every
	// peer's row and deadline settle into the steady state.
	if err := waitFor(ctx, 30*time.Second+2*interval, "every peer to be alive", func() bool {
		return m.Stats().Peers[monitor.StateAlive] >= n
	}); err != nil {
		return r, err
	}
	if err := pause.For(ctx, max(2*time.Second, interval)); err != nil {
		return r, err
	}
	b0, cpu0, rd0, ns0, t0 := m.Stats().Beats, cpuTime(), readBytes(), nc.Stats(), time.Now()
	if err := pause.For(ctx, measure); err != nil {
		return r, err
	}
	b1, cpu1, rd1, ns1, t1 := m.Stats().Beats, cpuTime(), readBytes(), nc.Stats(), time.Now()
	wall := t1.Sub(t0)
	if ns1.InMsgs > ns0.InMsgs {
		r.BeatBytes = round3(float64(ns1.InBytes-ns0.InBytes) / float64(ns1.InMsgs-ns0.InMsgs))
	}
	r.InBytesPerSec = round3(float64(ns1.InBytes-ns0.InBytes) / wall.Seconds())
	if rd0 > 0 && rd1 > rd0 {
		r.ReadBytesPerSec = round3(float64(rd1-rd0) / wall.Seconds())
	}
	r.Cores = round3(float64(cpu1-cpu0) / float64(wall))
	if b1 > b0 {
		r.NsPerBeat = round3(float64(cpu1-cpu0) / float64(b1-b0))
		busy := float64(cpu1-cpu0) - r.IdleCores*float64(wall)
		r.NsPerBeatOverIdle = round3(busy / float64(b1-b0))
	}
	r.BeatsPerSec = round3(float64(b1-b0) / wall.Seconds())
	r.KeptUp = r.BeatsPerSec >= 0.95*float64(n)/interval.Seconds()
	r.HeapBytes = heapInuse()
	r.BytesPerPeer = round3((float64(r.HeapBytes) - float64(r.BaselineHeap)) / float64(n))
	r.RSSBytes = rssBytes()
	st := m.Stats()
	r.Alive = st.Peers[monitor.StateAlive]
	r.NotAlive = st.Peers[monitor.StateSuspect] + st.Peers[monitor.StateDead]
	return r, nil
}

// Child is the publisher child of the scale bench, given the value of
// ChildEnv: it serves (or uses the parent's server), prints "url <URL>",
// waits for a line on stdin, then beats the simulated nodes until stdin
// closes. It reads os.Stdin directly because it only ever runs as a child
// process.
func Child(ctx context.Context, spec string, stdout io.Writer) error {
	var o publisherOptions
	if err := json.Unmarshal([]byte(spec), &o); err != nil {
		return fmt.Errorf("bench: publisher child: %s: %w", ChildEnv, err)
	}
	n, interval := &o.N, &o.Interval
	c := &Common{URL: o.URL}
	url, stop, err := c.server()
	if err != nil {
		return err
	}
	defer stop()
	nc, err := connect(url, "bench-scale-fleet")
	if err != nil {
		return err
	}
	defer nc.Close()
	fmt.Fprintf(stdout, "url %s\n", url)
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadString('\n'); err != nil {
		return nil // parent went away before starting us
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _, _ = io.Copy(io.Discard, in); cancel() }()
	f := newFleet(nc, "scale-", *n, *interval)
	f.beat.Labels = o.Labels
	return f.run(ctx, time.Now())
}

// churnRunOnce sends one beat from each of ids distinct ids through a
// monitor bounded to maxPeers, and reads the heap after each quarter. It
// runs in-process, server included: the server holds no per-subject state
// that grows with distinct subjects, so only a leak would make it grow.
func churnRunOnce(ctx context.Context, e *env, c *Common, ids, maxPeers int) (*churnRun, error) {
	url, stop, err := c.server()
	if err != nil {
		return nil, err
	}
	defer stop()
	pub, err := connect(url, "bench-churn-publisher")
	if err != nil {
		return nil, err
	}
	defer pub.Close()
	nc, err := connect(url, "bench-churn-monitor")
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	cfg := monitor.DefaultConfig()
	cfg.MaxPeers = maxPeers
	m, err := monitor.New(nc, cfg)
	if err != nil {
		return nil, err
	}
	runCtx, stopMon := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- m.Run(runCtx) }()
	defer func() { stopMon(); <-runErr }()
	if err := waitFor(ctx, 10*time.Second, "the monitor to be ready", func() bool { return m.Ready() == nil }); err != nil {
		return nil, err
	}
	subj := wire.MustSubjects(wire.DefaultPrefix)
	b := wire.Beat{V: wire.Version, Host: "churn.example.com", PID: 1, Boot: "0123456789abcdef", Seq: 1,
		IntervalMS: 1000, Status: wire.StatusAlive, Version: "v0.0.0-bench"}
	buf := make([]byte, 0, wire.MaxPayload)
	cr := &churnRun{IDs: ids, MaxPeers: maxPeers}
	const window = 50_000 // in flight at most, far below the monitor's pending limit
	sent := 0
	for q := 1; q <= 4; q++ {
		for ; sent < ids*q/4; sent++ {
			if sent%window == 0 && sent > 0 {
				if err := pub.Flush(); err != nil {
					return nil, err
				}
				target := uint64(sent - window)
				if err := waitFor(ctx, 30*time.Second, "the monitor to catch up", func() bool { return m.Stats().Beats >= target }); err != nil {
					return nil, err
				}
			}
			b.ID, b.TS = "churn-"+strconv.Itoa(sent), time.Now().UTC()
			buf = wire.AppendBeat(buf[:0], &b)
			if err := pub.Publish(subj.Beat(b.ID), buf); err != nil {
				return nil, err
			}
		}
		if err := pub.Flush(); err != nil {
			return nil, err
		}
		target := uint64(sent)
		if err := waitFor(ctx, 60*time.Second, "the monitor to catch up", func() bool { return m.Stats().Beats >= target }); err != nil {
			return nil, err
		}
		h := heapInuse()
		cr.HeapBytes = append(cr.HeapBytes, h)
		fmt.Fprintf(e.stderr, "churn %d%%: %d ids, heap %d MiB\n", q*25, sent, h>>20)
	}
	st := m.Stats()
	cr.Evicted = st.Evicted
	for _, v := range st.Peers {
		cr.Peers += v
	}
	cr.Growth = round3(float64(cr.HeapBytes[3]) / float64(cr.HeapBytes[0]))
	return cr, nil
}
