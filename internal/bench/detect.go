package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hbmesh/hbmesh/internal/pause"
	"github.com/hbmesh/hbmesh/monitor"
)

// DetectOptions are the options of the detect benchmark.
type DetectOptions struct {
	Common
	// N is the number of simulated nodes.
	N int
	// K is the number of nodes killed.
	K int
	// Interval is the beat interval of every node.
	Interval time.Duration
	// Window is the time after warm-up the kills are spread over. Default:
	// five intervals.
	Window time.Duration
	// Seed seeds the choice of kills and their moments.
	Seed uint64

	// Crash crashes the victims instead (crash.go): each beats on a
	// connection of its own, closed at its kill, so the server publishes a
	// DISCONNECT advisory, and two monitors measure crash → dead through
	// the crash fast path and through the timeout path in the same run.
	// Interval is then ignored for Intervals, and Window defaults to the
	// longest interval.
	Crash bool
	// Intervals are, with Crash, the fleet's beat intervals: peers and
	// victims are spread evenly over them. Default: 1s and 10s.
	Intervals []time.Duration
	// Bounced is, with Crash, the number of live nodes, spread evenly
	// over the intervals, whose connections the embedded server kicks
	// once each while the victims die; they reconnect, and a dead verdict
	// for one is a false death. It needs the embedded server (no URL).
	Bounced int
}

type detectResult struct {
	Bench           string  `json:"bench"`
	N               int     `json:"n"`
	K               int     `json:"k"`
	IntervalMS      int64   `json:"interval_ms"`
	DeadTimeoutMS   float64 `json:"dead_timeout_ms"`
	P50OvershootMS  float64 `json:"p50_overshoot_ms"`
	P99OvershootMS  float64 `json:"p99_overshoot_ms"`
	MaxOvershootMS  float64 `json:"max_overshoot_ms"`
	P50LastBeatMS   float64 `json:"p50_overshoot_last_beat_ms"`
	P99LastBeatMS   float64 `json:"p99_overshoot_last_beat_ms"`
	MaxLastBeatMS   float64 `json:"max_overshoot_last_beat_ms"`
	P99DetectorMS   float64 `json:"p99_detector_overshoot_ms"`
	MaxDetectorMS   float64 `json:"max_detector_overshoot_ms"`
	Detected        int     `json:"detected"`
	Missed          int     `json:"missed"`
	FalseDeaths     int     `json:"false_deaths"`
	FalseSuspicions int     `json:"false_suspicions"`
	BeatsSent       uint64  `json:"beats_sent"`
	BeatsAccepted   uint64  `json:"beats_accepted"`
	Stalls          uint64  `json:"monitor_stalls"`
}

// runDetect measures how late dead verdicts come. One goroutine simulates n
// nodes; k of them stop beating at random moments, without a goodbye.
// Lateness is taken against the kill (what an operator sees; ideally <= 0
// because the last beat came before it) and against the last beat actually
// sent (the detector's own lateness plus delivery).
func (o DetectOptions) run(ctx context.Context, e *env) error {
	c := &o.Common
	n, k, interval, window, seed := &o.N, &o.K, &o.Interval, &o.Window, &o.Seed
	if o.Crash {
		ivs := o.Intervals
		if len(ivs) == 0 {
			ivs = []time.Duration{time.Second, 10 * time.Second}
		}
		bounced := o.Bounced
		if c.Quick {
			*n, *k, bounced, ivs = 1000, 20, 10, []time.Duration{250 * time.Millisecond, time.Second}
		}
		for _, iv := range ivs {
			if iv < 100*time.Millisecond {
				return invalid.Field("--intervals", iv, "is below 100ms")
			}
		}
		return runCrash(ctx, e, c, *n, *k, bounced, ivs, *window, *seed)
	}
	if c.Quick {
		*n, *k, *interval = 1000, 10, 250*time.Millisecond
	}
	if *window == 0 {
		*window = 5 * *interval
	}
	switch {
	case *n < 1:
		return invalid.Field("--nodes", *n, "must be at least 1")
	case *k < 0 || *k > *n:
		return invalid.Field("--kills", *k, fmt.Sprintf("must be within [0, --nodes %d]", *n))
	case *interval < 100*time.Millisecond:
		return invalid.Field("--interval", *interval, "is below 100ms")
	}
	url, stop, err := c.server()
	if err != nil {
		return err
	}
	defer stop()
	pubNC, err := connect(url, "bench-detect-fleet")
	if err != nil {
		return err
	}
	defer pubNC.Close()
	monNC, err := connect(url, "bench-detect-monitor")
	if err != nil {
		return err
	}
	defer monNC.Close()

	fl := newFleet(pubNC, "sim-", *n, *interval)
	idx := make(map[string]int, *n)
	for i, id := range fl.ids {
		idx[id] = i
	}
	var mu sync.Mutex
	dead := make(map[int]monitor.Event)
	var falseDeaths, falseSuspects int
	victim := make([]bool, *n)
	cfg := monitor.DefaultConfig()
	cfg.MaxPeers = max(cfg.MaxPeers, *n)
	cfg.OnEvent = func(ev monitor.Event) {
		i, ok := idx[ev.ID]
		if !ok {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		switch ev.State {
		case monitor.StateDead:
			if !victim[i] {
				falseDeaths++
			} else if _, dup := dead[i]; !dup {
				dead[i] = ev
			}
		case monitor.StateSuspect:
			if !victim[i] {
				falseSuspects++
			}
		}
	}
	m, err := monitor.New(monNC, cfg)
	if err != nil {
		return err
	}
	timeout := time.Duration(cfg.DeadAfter * float64(*interval))

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var monErr, fleetErr error
	wg.Go(func() { monErr = m.Run(runCtx) })
	if err := waitFor(ctx, 10*time.Second, "the monitor to be ready", func() bool { return m.Ready() == nil }); err != nil {
		cancel()
		wg.Wait()
		return err
	}
	start := time.Now().Add(10 * time.Millisecond)
	warm := 2 * *interval
	rng := rand.New(rand.NewPCG(*seed, 42))
	for _, i := range rng.Perm(*n)[:*k] {
		victim[i] = true
		fl.killAt[i] = start.Add(warm + time.Duration(rng.Int64N(int64(*window))))
	}
	fleetCtx, stopFleet := context.WithCancel(runCtx)
	wg.Go(func() { fleetErr = fl.run(fleetCtx, start) })
	fmt.Fprintf(e.stderr, "detect: %d nodes at %v, killing %d over %v after %v of warm-up\n", *n, *interval, *k, *window, warm)

	end := start.Add(warm + *window + timeout + time.Second)
	_ = waitFor(ctx, time.Until(end)+time.Second, "every victim's dead event", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(dead) == *k && time.Now().After(start.Add(warm+*window+*interval))
	})
	// Keep the survivors beating a little longer so a late false death
	// would still be seen.
	_ = pause.For(ctx, *interval)
	stopFleet()
	st := m.Stats()
	cancel()
	wg.Wait()
	if monErr != nil {
		return fmt.Errorf("bench: monitor: %w", monErr)
	}
	if fleetErr != nil {
		return fleetErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	mu.Lock()
	defer mu.Unlock()
	var vsKill, vsLast, vsDue []float64
	for i, ev := range dead {
		vsKill = append(vsKill, ms(ev.Time.Sub(fl.killAt[i])-timeout))
		vsLast = append(vsLast, ms(ev.Time.Sub(fl.lastSent[i])-timeout))
		vsDue = append(vsDue, ms(ev.Overshoot))
	}
	res := detectResult{
		Bench: "detect", N: *n, K: *k, IntervalMS: interval.Milliseconds(), DeadTimeoutMS: ms(timeout),
		P50OvershootMS: round3(quantile(vsKill, .5)), P99OvershootMS: round3(quantile(vsKill, .99)),
		MaxOvershootMS: round3(quantile(vsKill, 1)),
		P50LastBeatMS:  round3(quantile(vsLast, .5)), P99LastBeatMS: round3(quantile(vsLast, .99)),
		MaxLastBeatMS: round3(quantile(vsLast, 1)),
		P99DetectorMS: round3(quantile(vsDue, .99)), MaxDetectorMS: round3(quantile(vsDue, 1)),
		Detected: len(dead), Missed: *k - len(dead), FalseDeaths: falseDeaths, FalseSuspicions: falseSuspects,
		BeatsSent: fl.sent, BeatsAccepted: st.Beats, Stalls: st.Stalls,
	}
	return e.emit(res)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
