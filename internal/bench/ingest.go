package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/wire"
)

// IngestOptions are the options of the ingest benchmark.
type IngestOptions struct {
	Common
	// N is the number of distinct node ids.
	N int
	// Batches is the beats per id in each parked backlog: M = N*Batches.
	Batches int
	// Windows is the timed backlogs per consumer per round.
	Windows int
	// Rounds is the rounds, each measuring both consumers.
	Rounds int
	// Verbose prints each backlog's rate on stderr.
	Verbose bool
	// BareChan makes the bare subscriber drain a channel subscription, as
	// the monitor does, instead of counting in nats.go's callback.
	BareChan bool
	// Live times each backlog from the first publish, with the consumer
	// reading as the publisher sends, instead of parking it at the server
	// first.
	Live bool
}

type ingestResult struct {
	Bench   string `json:"bench"`
	N       int    `json:"n"`
	M       int    `json:"m"`
	Rounds  int    `json:"rounds"`
	Batches int    `json:"batches"`
	Windows int    `json:"windows"`
	Bare    string `json:"bare"` // how the bare subscriber takes messages: callback or chan
	// Mode is how a backlog reaches the consumer: "parked" (queued at the
	// server while the consumer's reads are paused, then drained: the
	// consumer sets the pace) or "live" (the consumer reads while the
	// publisher sends as fast as it can: whichever is slower sets it).
	Mode              string    `json:"mode"`
	PayloadBytes      int       `json:"payload_bytes"`
	BareMsgsPerSec    float64   `json:"bare_msgs_per_sec"`
	MonitorMsgsPerSec float64   `json:"monitor_msgs_per_sec"`
	Ratio             float64   `json:"ratio"`
	Ratios            []float64 `json:"ratios"`
	PublishMsgsPerSec float64   `json:"publish_msgs_per_sec"`
	// CPU of the whole process (server, consumer, and in live mode the
	// publisher) per message while a backlog drains: what each consumer
	// costs the machine, which on 2 cores is what caps the rates.
	BareCPUNsPerMsg    float64 `json:"bare_cpu_ns_per_msg"`
	MonitorCPUNsPerMsg float64 `json:"monitor_cpu_ns_per_msg"`
	Dropped            int     `json:"dropped"`
	Rejected           uint64  `json:"rejected"`
	Accepted           uint64  `json:"accepted"`
}

// runIngest measures how many beats per second the real monitor processes
// against a bare subscriber on the same subject that only counts. Each
// round parks a backlog of M pre-encoded beats (N ids, M/N beats each) at
// the server while the consumer's reads are paused, then times the
// consumer draining it; with --live the clock starts at the first publish
// instead, and the consumer reads while the publisher sends, so the slower
// of the two sets the rate. Bare and monitor alternate, in alternating order,
// so machine drift hits both alike; the ratio is the median of the
// per-round ratios.
func (o IngestOptions) run(ctx context.Context, e *env) error {
	c := &o.Common
	n, passes, windows, rounds := &o.N, &o.Batches, &o.Windows, &o.Rounds
	verbose, bareChan, live := &o.Verbose, &o.BareChan, &o.Live
	if c.Quick {
		*n, *passes, *windows, *rounds = 2000, 3, 2, 2
	}
	for _, f := range []struct {
		flag string
		v    int
	}{{"--nodes", *n}, {"--batches", *passes}, {"--windows", *windows}, {"--rounds", *rounds}} {
		if f.v < 1 {
			return invalid.Field(f.flag, f.v, "must be positive")
		}
	}
	url, stop, err := c.server()
	if err != nil {
		return err
	}
	defer stop()
	pub, err := connect(url, "bench-ingest-publisher")
	if err != nil {
		return err
	}
	defer pub.Close()

	in := &ingest{e: e, url: url, pub: pub, n: *n, passes: *passes, windows: *windows, subj: wire.MustSubjects(wire.DefaultPrefix), verbose: *verbose, bareChan: *bareChan, live: *live}
	in.ids = make([]string, in.n)
	in.subjects = make([]string, in.n)
	for i := range in.ids {
		in.ids[i] = "ingest-" + strconv.Itoa(i)
		in.subjects[i] = in.subj.Beat(in.ids[i])
	}
	res := ingestResult{Bench: "ingest", N: in.n, M: in.backlogSize(), Rounds: *rounds, Batches: in.passes, Windows: in.windows, Bare: "callback", Mode: "parked"}
	if in.bareChan {
		res.Bare = "chan"
	}
	if in.live {
		res.Mode = "live"
	}
	var bare, mon, pubRates, bareCPU, monCPU []float64
	for r := range *rounds {
		order := []bool{false, true}
		if r%2 == 1 {
			order = []bool{true, false}
		}
		var br, mr float64
		for _, useMonitor := range order {
			var rate, prate float64
			var err error
			// The label lets a --cpuprofile tell the consumers apart
			// (pprof -tagfocus consumer=monitor); the goroutines a round
			// starts, nats.go's reader among them, inherit it.
			if useMonitor {
				pprof.Do(ctx, pprof.Labels("consumer", "monitor"), func(ctx context.Context) {
					rate, prate, err = in.monitorRound(ctx, &res)
				})
				mr = rate
				monCPU = append(monCPU, in.cpuPerMsg)
			} else {
				pprof.Do(ctx, pprof.Labels("consumer", "bare"), func(ctx context.Context) {
					rate, prate, err = in.bareRound(ctx, &res)
				})
				br = rate
				bareCPU = append(bareCPU, in.cpuPerMsg)
			}
			if err != nil {
				return err
			}
			pubRates = append(pubRates, prate)
		}
		bare, mon = append(bare, br), append(mon, mr)
		res.Ratios = append(res.Ratios, round3(mr/br))
		fmt.Fprintf(e.stderr, "ingest round %d: bare %.0f msg/s, monitor %.0f msg/s, ratio %.3f\n", r+1, br, mr, mr/br)
	}
	res.BareMsgsPerSec = round3(median(bare))
	res.MonitorMsgsPerSec = round3(median(mon))
	res.Ratio = round3(median(res.Ratios))
	res.PublishMsgsPerSec = round3(median(pubRates))
	res.BareCPUNsPerMsg = round3(median(bareCPU))
	res.MonitorCPUNsPerMsg = round3(median(monCPU))
	res.PayloadBytes = in.offs[1] - in.offs[0]
	return e.emit(res)
}

type ingest struct {
	e        *env
	url      string
	pub      *nats.Conn
	n        int
	passes   int
	windows  int
	subj     wire.Subjects
	ids      []string
	subjects []string
	seq      uint64    // last seq encoded for every id
	ts       time.Time // last sender timestamp encoded for every id
	verbose  bool
	bareChan bool
	live     bool // see ingestResult.Mode
	// The current backlog, in publish order: message k is arena[offs[k]:
	// offs[k+1]], for ids[k%n]. One buffer and an offset table rather than
	// M small slices, so the garbage collector, which runs several times
	// per backlog at these rates, has nothing of the harness's to scan.
	arena   []byte
	offs    []int
	markers int // gate markers published so far
	// cpuPerMsg is the process CPU per message, in ns, of the last
	// drain's timed backlogs.
	cpuPerMsg float64
}

// encode prepares the next backlog: M = n*passes beats, passes rounds of
// one beat per id, each announcing a 1s interval like a default node. The
// sender timestamps of one id's beats are an interval apart, as if the
// beats had queued up while the consumer was away, so the monitor's flood
// guard (beats close together by arrival *and* by sender time) lets them
// all through.
func (in *ingest) encode() {
	in.arena, in.offs = in.arena[:0], append(in.offs[:0], 0)
	b := wire.Beat{V: wire.Version, Host: "bench-host.example.com", PID: 4242, Boot: "0123456789abcdef",
		IntervalMS: 1000, Status: wire.StatusAlive, Version: "v0.0.0-bench"}
	if in.ts.IsZero() {
		// An hour back leaves room for the default run's 720 passes (a
		// second each) without a timestamp in the future; a bigger run
		// only shows as clock skew.
		in.ts = time.Now().UTC().Add(-time.Hour)
	}
	for range in.passes {
		in.seq++
		in.ts = in.ts.Add(time.Second)
		b.TS = in.ts
		for _, id := range in.ids {
			b.ID, b.Seq = id, in.seq
			in.arena = wire.AppendBeat(in.arena, &b)
			in.offs = append(in.offs, len(in.arena))
		}
	}
}

// publish sends the batch plus one end message and waits until the server
// has taken all of it. It returns the publish rate.
func (in *ingest) publish(end string, endData []byte) (float64, error) {
	start := time.Now()
	for k := range in.backlog() {
		if err := in.pub.Publish(in.subjects[k%in.n], in.arena[in.offs[k]:in.offs[k+1]]); err != nil {
			return 0, fmt.Errorf("bench: publish: %w", err)
		}
	}
	if err := in.pub.Publish(end, endData); err != nil {
		return 0, fmt.Errorf("bench: publish: %w", err)
	}
	if err := in.pub.FlushTimeout(30 * time.Second); err != nil {
		return 0, fmt.Errorf("bench: flush publisher: %w", err)
	}
	return float64(in.backlog()) / time.Since(start).Seconds(), nil
}

// backlogSize is the number of beats in every backlog.
func (in *ingest) backlogSize() int { return in.n * in.passes }

// backlog is the number of beats in the current backlog.
func (in *ingest) backlog() int { return len(in.offs) - 1 }

// park pauses the consumer's reads and makes sure the pause has taken:
// nats.go's reader may sit inside a socket read that began before the
// pause, so a marker message is sent for it to return with, after which
// its next read waits at the gate. delivered reports how many messages the
// consumer has seen.
func (in *ingest) park(ctx context.Context, g *gateDialer, delivered func() uint64) error {
	for range 20 {
		g.pause()
		before := delivered()
		if err := in.pub.Publish(in.subj.Beat("gate-marker"), []byte("{}")); err != nil {
			return err
		}
		in.markers++
		if err := in.pub.Flush(); err != nil {
			return err
		}
		if waitFor(ctx, 500*time.Millisecond, "the gate marker", func() bool { return delivered() > before }) == nil {
			return nil
		}
		// The read in flight returned with something else (the monitor's
		// self-check PONG, say), and the reader is now parked with the
		// marker unread. Let it through and try again.
		g.resume()
		if err := waitFor(ctx, 10*time.Second, "the gate marker", func() bool { return delivered() > before }); err != nil {
			return err
		}
	}
	return errors.New("bench: could not park the consumer's reads")
}

// consumer is what a round measures: bare subscriber or monitor.
type consumer struct {
	g         *gateDialer
	delivered func() uint64 // messages seen so far, accepted or not
	ended     <-chan string // receives the tag of each end message processed
}

// drain runs the round's timed backlogs against c (one untimed one when
// timed is false, to warm up) and returns the consumer's rate and the
// publisher's. Each backlog is parked at the server while c's reads are
// paused, then released and drained; the clock runs from the release to
// c processing the backlog's end message. In live mode nothing is parked,
// and the clock runs from the first publish.
func (in *ingest) drain(ctx context.Context, c *consumer, timed bool) (rate, pubRate float64, err error) {
	var busy, cpu time.Duration
	var msgs int
	var prs []float64
	n := in.windows
	if !timed {
		n = 1
	}
	for j := range n {
		in.encode()
		tag := fmt.Sprintf("end-%d-%d", in.seq, j)
		b := wire.Beat{V: wire.Version, ID: tag, Host: "bench-host.example.com", Boot: "0123456789abcdef",
			Seq: 1, IntervalMS: 1000, Status: wire.StatusAlive}
		var start time.Time
		var cpu0 time.Duration
		if in.live {
			start, cpu0 = time.Now(), cpuTime()
		} else if err := in.park(ctx, c.g, c.delivered); err != nil {
			return 0, 0, err
		}
		pr, err := in.publish(in.subj.Beat(tag), wire.AppendBeat(nil, &b))
		if err != nil {
			return 0, 0, err
		}
		prs = append(prs, pr)
		if !in.live {
			start, cpu0 = time.Now(), cpuTime()
			c.g.resume()
		}
		for done := false; !done; {
			select {
			case got := <-c.ended:
				done = got == tag
			case <-ctx.Done():
				return 0, 0, ctx.Err()
			case <-time.After(60 * time.Second):
				return 0, 0, fmt.Errorf("bench: consumer did not get through its backlog")
			}
		}
		took := time.Since(start)
		busy += took
		cpu += cpuTime() - cpu0
		if timed && in.verbose {
			fmt.Fprintf(in.e.stderr, "  backlog %d: %.0f msg/s, %.2f cores\n", j, float64(in.backlog()+1)/took.Seconds(), (cpuTime()-cpu0).Seconds()/took.Seconds())
		}
		msgs += in.backlog() + 1
	}
	in.cpuPerMsg = float64(cpu.Nanoseconds()) / float64(msgs)
	return float64(msgs) / busy.Seconds(), median(prs), nil
}

func (in *ingest) bareRound(ctx context.Context, res *ingestResult) (rate, pubRate float64, err error) {
	g := newGateDialer()
	nc, err := connect(in.url, "bench-ingest-bare", nats.SetCustomDialer(g))
	if err != nil {
		return 0, 0, err
	}
	defer func() { g.resume(); nc.Close() }()
	var count atomic.Uint64
	ended := make(chan string, 1)
	endPrefix := in.subj.Beat("end-")
	onMsg := func(m *nats.Msg) {
		count.Add(1)
		if strings.HasPrefix(m.Subject, endPrefix) {
			ended <- strings.TrimPrefix(m.Subject, in.subj.Beat(""))
		}
	}
	var sub *nats.Subscription
	if in.bareChan {
		// The monitor's own mechanism: a channel with room for the whole
		// backlog, drained by one goroutine.
		ch := make(chan *nats.Msg, in.backlogSize()+1024)
		if sub, err = nc.ChanSubscribe(in.subj.Beats(), ch); err != nil {
			return 0, 0, fmt.Errorf("bench: subscribe: %w", err)
		}
		done := make(chan struct{})
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			for {
				select {
				case m := <-ch:
					onMsg(m)
				case <-done:
					return
				}
			}
		}()
		defer func() { close(done); <-drained }()
	} else {
		if sub, err = nc.Subscribe(in.subj.Beats(), onMsg); err != nil {
			return 0, 0, fmt.Errorf("bench: subscribe: %w", err)
		}
		if err := sub.SetPendingLimits(-1, -1); err != nil {
			return 0, 0, err
		}
	}
	if err := nc.Flush(); err != nil {
		return 0, 0, err
	}
	c := &consumer{g: g, delivered: count.Load, ended: ended}
	if _, _, err := in.drain(ctx, c, false); err != nil {
		return 0, 0, err
	}
	before, markers := count.Load(), in.markers
	if rate, pubRate, err = in.drain(ctx, c, true); err != nil {
		return 0, 0, err
	}
	want := uint64(in.windows*(in.backlogSize()+1) + in.markers - markers) // beats and end per backlog, and the markers
	if d, _ := sub.Dropped(); d > 0 || count.Load()-before != want {
		res.Dropped += d
		return 0, 0, fmt.Errorf("bench: bare consumer saw %d of %d messages, dropped %d", count.Load()-before, want, d)
	}
	return rate, pubRate, nil
}

func (in *ingest) monitorRound(ctx context.Context, res *ingestResult) (rate, pubRate float64, err error) {
	g := newGateDialer()
	nc, err := connect(in.url, "bench-ingest-monitor", nats.SetCustomDialer(g))
	if err != nil {
		return 0, 0, err
	}
	defer func() { g.resume(); nc.Close() }()

	// The last message of a batch is the first beat of a fresh id: its
	// first_beat event marks the moment the monitor is through the batch,
	// because one subscription delivers in order.
	ended := make(chan string, 1)
	cfg := monitor.DefaultConfig()
	cfg.MaxPeers = max(cfg.MaxPeers, 2*in.n)
	var suspects atomic.Uint64
	cfg.OnEvent = func(ev monitor.Event) {
		switch {
		case ev.Reason == monitor.ReasonFirstBeat && strings.HasPrefix(ev.ID, "end-"):
			ended <- ev.ID
		case ev.State == monitor.StateSuspect && !strings.HasPrefix(ev.ID, "end-"):
			suspects.Add(1) // the end ids beat once and are meant to fall silent
		}
	}
	m, err := monitor.New(nc, cfg)
	if err != nil {
		return 0, 0, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- m.Run(runCtx) }()
	defer func() { cancel(); <-runErr }()
	if err := waitFor(ctx, 10*time.Second, "the monitor to be ready", func() bool { return m.Ready() == nil }); err != nil {
		return 0, 0, err
	}
	seen := func() uint64 {
		s := m.Stats()
		n := s.Beats
		for _, r := range s.Rejected {
			n += r
		}
		return n
	}
	c := &consumer{g: g, delivered: seen, ended: ended}
	// Warm-up: every id becomes a known peer, so the timed batches measure
	// the steady-state path, not first sightings.
	if _, _, err := in.drain(ctx, c, false); err != nil {
		return 0, 0, err
	}
	before, markers := m.Stats(), in.markers
	if rate, pubRate, err = in.drain(ctx, c, true); err != nil {
		return 0, 0, err
	}
	after := m.Stats()
	rejected := uint64(0)
	for k, v := range after.Rejected {
		rejected += v - before.Rejected[k]
	}
	rejected -= uint64(in.markers - markers) // the gate markers
	res.Rejected += rejected
	res.Accepted += after.Beats - before.Beats
	if tr := suspects.Load(); tr > 0 {
		return 0, 0, fmt.Errorf("bench: %d peers turned suspect during the timed batches", tr)
	}
	if got, want := after.Beats-before.Beats+rejected, uint64(in.windows*(in.backlogSize()+1)); got != want {
		lost := int(want) - int(got)
		res.Dropped += lost
		return 0, 0, fmt.Errorf("bench: monitor saw %d of %d beats: %d dropped", got, want, lost)
	}
	return rate, pubRate, nil
}
