package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/internal/pause"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/node"
	"github.com/hbmesh/hbmesh/wire"
)

// crashPath is one detection path's figures for one interval: crash →
// dead, in ms, measured from the moment the victim's connection was
// closed.
type crashPath struct {
	P50MS    float64 `json:"p50_ms"`
	P99MS    float64 `json:"p99_ms"`
	MaxMS    float64 `json:"max_ms"`
	Detected int     `json:"detected"`
	Missed   int     `json:"missed"`
	// ByReason counts the dead verdicts by their reason.
	ByReason map[string]int `json:"by_reason"`
}

type crashInterval struct {
	IntervalMS int64     `json:"interval_ms"`
	Peers      int       `json:"peers"`
	Victims    int       `json:"victims"`
	FastPath   crashPath `json:"fast_path"`
	Timeout    crashPath `json:"timeout_path"`
	// P50Ratio and P99Ratio are the fast path's figure over the timeout
	// path's, measured in the same run.
	P50Ratio float64 `json:"p50_ratio"`
	P99Ratio float64 `json:"p99_ratio"`
}

// crashBounced is what became of the bounced peers: live nodes whose
// connections the server kicked, which must never be reported dead.
type crashBounced struct {
	Peers       int `json:"peers"`
	Kicked      int `json:"kicked"`      // kicks the server carried out
	Reconnected int `json:"reconnected"` // peers connected again, after their kick, at the end
	// FalseDeathsFast and FalseDeathsTimeout count the bounced peers
	// that each monitor reported dead; they are in the run's false
	// deaths too.
	FalseDeathsFast    int `json:"false_deaths_fast_path"`
	FalseDeathsTimeout int `json:"false_deaths_timeout_path"`
}

type crashResult struct {
	Bench string `json:"bench"`
	Mode  string `json:"mode"` // "crash"

	N           int             `json:"n"`
	K           int             `json:"k"`
	ReconnectMS int64           `json:"reconnect_window_ms"`
	MarginMS    int64           `json:"disconnect_margin_ms"`
	Intervals   []crashInterval `json:"intervals"`
	// FalseDeaths counts dead verdicts of either monitor for peers that
	// were not killed, or before their kill.
	FalseDeaths       int               `json:"false_deaths"`
	FalseDeathsFast   int               `json:"false_deaths_fast_path"`
	FalseDeathsTimout int               `json:"false_deaths_timeout_path"`
	Bounced           crashBounced      `json:"bounced"`
	Checks            map[string]uint64 `json:"checks"`
	Advisories        map[string]uint64 `json:"advisories"`
	BeatsSent         uint64            `json:"beats_sent"`
	Stalls            uint64            `json:"monitor_stalls"`
	RunS              float64           `json:"run_s"` // the whole run, setup included
}

// crashVictimOpts are the options of a victim's connection: hbmesh's own
// reconnect policy (cmd/hbmesh), so that the window its name announces is
// the one hbmesh nodes announce.
func crashVictimOpts() []nats.Option {
	return []nats.Option{
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, 500*time.Millisecond),
		nats.MaxReconnects(-1),
	}
}

// deadLog records one monitor's dead verdicts.
type deadLog struct {
	mu    sync.Mutex
	first map[string]monitor.Event // the first dead event of each id
	all   int
}

func (d *deadLog) add(ev monitor.Event) {
	if ev.State != monitor.StateDead {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.all++
	if _, ok := d.first[ev.ID]; !ok {
		d.first[ev.ID] = ev
	}
}

func (d *deadLog) get(id string) (monitor.Event, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ev, ok := d.first[id]
	return ev, ok
}

func (d *deadLog) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.first)
}

// runCrash is `bench detect --crash`: crash → dead through the crash fast
// path and through the timeout path, side by side in one run. Two
// monitors watch the same fleet, one with the fast path and one without
// (NoFastPath). The fleet mixes beat intervals; k victims, spread evenly
// over the intervals, each beat on a connection of their own, named as
// hbmesh names a node's, which is closed at a random moment (no goodbye,
// no reconnect: as the kernel closes a killed process's socket); the
// server then publishes a real DISCONNECT advisory. The other peers share
// one connection. Beside them, bounced live peers, spread evenly over the
// intervals too, are real nodes on connections of their own, named
// likewise, each kicked once by the server over the same span, after
// which it reconnects: a dead verdict for one is a false death. The
// server gets the mesh account that hbmesh server sets up, unless -s
// names another (then there is no server to kick with, and bounced must
// be 0).
func runCrash(ctx context.Context, e *env, c *Common, n, k, bounced int, intervals []time.Duration, window time.Duration, seed uint64) error {
	began := time.Now()
	per := n / len(intervals)
	switch {
	case per < 1:
		return invalid.Field("--nodes", n, fmt.Sprintf("with --crash must be at least the number of --intervals (%d)", len(intervals)))
	case k < len(intervals) || k > per*len(intervals):
		return invalid.Field("--kills", k, fmt.Sprintf("with --crash must be within [%d, %d]: a victim or more per interval",
			len(intervals), per*len(intervals)))
	case bounced < 0:
		return invalid.Field("--bounced", bounced, "must not be negative")
	case bounced > 0 && c.URL != "":
		return invalid.Field("--bounced", bounced, "needs the embedded server to kick them through: with -s, use --bounced 0")
	}
	longest := slices.Max(intervals)
	if window == 0 {
		window = longest
	}
	c.meshAccount = true
	url, stop, err := c.server()
	if err != nil {
		return err
	}
	defer stop()
	pubNC, err := connect(url, "bench-crash-fleet")
	if err != nil {
		return err
	}
	defer pubNC.Close()

	// The two monitors.
	fast, slow := &deadLog{first: map[string]monitor.Event{}}, &deadLog{first: map[string]monitor.Event{}}
	mons := make([]*monitor.Monitor, 2)
	for i, mod := range []func(*monitor.Config){
		func(cfg *monitor.Config) { cfg.OnEvent = fast.add },
		func(cfg *monitor.Config) { cfg.OnEvent, cfg.NoFastPath = slow.add, true },
	} {
		nc, err := connect(url, "bench-crash-monitor-"+strconv.Itoa(i))
		if err != nil {
			return err
		}
		defer nc.Close()
		cfg := monitor.DefaultConfig()
		cfg.MaxPeers = max(cfg.MaxPeers, n+bounced)
		mod(&cfg)
		if mons[i], err = monitor.New(nc, cfg); err != nil {
			return err
		}
	}
	cfg := monitor.DefaultConfig()

	// The fleets, one per interval, and the victims' connections.
	rng := rand.New(rand.NewPCG(seed, 7))
	fleets := make([]*fleet, len(intervals))
	victims := make([][]int, len(intervals))
	var conns []*nats.Conn
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	var reconnect time.Duration
	for f, iv := range intervals {
		fl := newFleet(pubNC, "crash-"+iv.String()+"-", per, iv)
		fleets[f] = fl
		kf := k / len(intervals)
		if f < k%len(intervals) {
			kf++
		}
		victims[f] = rng.Perm(per)[:kf]
		fl.conns = make([]*nats.Conn, per)
		for _, i := range victims[f] {
			nc, window, err := victimConn(url, fl.ids[i])
			if err != nil {
				return err
			}
			conns = append(conns, nc)
			reconnect = window
			fl.conns[i] = nc
			if err := answerProbes(nc, fl, i); err != nil {
				return err
			}
		}
	}
	if err := pubNC.Flush(); err != nil {
		return fmt.Errorf("bench: flush: %w", err)
	}
	bps, err := newBouncedPeers(url, bounced, intervals)
	if err != nil {
		return err
	}
	defer bps.close()

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	monErrs := make([]error, len(mons))
	for i, m := range mons {
		wg.Go(func() { monErrs[i] = m.Run(runCtx) })
	}
	defer func() { cancel(); wg.Wait() }()
	if err := waitFor(ctx, 10*time.Second, "the monitors to be ready", func() bool {
		return mons[0].Ready() == nil && mons[1].Ready() == nil
	}); err != nil {
		return err
	}
	// Advisories must reach the fast monitor, and it must have settled,
	// before the first kill; a starved machine may take a while.
	cctx, ccancel := context.WithTimeout(ctx, cfg.FastPathSettle+time.Minute)
	err = mons[0].CheckFastPath(cctx, func(name string) (*nats.Conn, error) { return connect(url, name, nats.NoReconnect()) })
	ccancel()
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}

	start := time.Now().Add(10 * time.Millisecond)
	warm := 2 * longest
	var lastKill time.Time
	for f, fl := range fleets {
		for _, i := range victims[f] {
			fl.killAt[i] = start.Add(warm + time.Duration(rng.Int64N(int64(window))))
			lastKill = later(lastKill, fl.killAt[i])
		}
	}
	for i := range bps.nodes {
		bps.kickAt[i] = start.Add(warm + time.Duration(rng.Int64N(int64(window))))
	}
	fleetCtx, stopFleets := context.WithCancel(runCtx)
	fleetErrs := make([]error, len(fleets)+1)
	var fwg sync.WaitGroup
	for f, fl := range fleets {
		fwg.Go(func() { fleetErrs[f] = fl.run(fleetCtx, start) })
	}
	fwg.Go(func() { fleetErrs[len(fleets)] = bps.run(fleetCtx, c.embedded) })
	fmt.Fprintf(e.stderr, "detect --crash: %d peers at %v, killing %d and kicking %d live ones over %v after %v of warm-up; two monitors, fast path and timeout path\n",
		per*len(intervals), intervals, k, len(bps.nodes), window, warm)

	timeout := time.Duration(cfg.DeadAfter * float64(longest))
	_ = waitFor(ctx, time.Until(lastKill.Add(timeout+2*time.Second)), "every victim dead in both monitors", func() bool {
		return fast.count() >= k && slow.count() >= k
	})
	// Keep the survivors beating a little longer, so a late false death
	// would still be seen.
	_ = pause.For(ctx, longest)
	reconnected := bps.reconnected()
	stopFleets()
	fwg.Wait()
	st := mons[0].Stats()
	var stalls uint64
	for _, m := range mons {
		stalls += m.Stats().Stalls
	}
	cancel()
	wg.Wait()
	for _, err := range append(monErrs, fleetErrs...) {
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	res := crashResult{
		Bench: "detect", Mode: "crash", N: per * len(intervals), K: k,
		ReconnectMS: reconnect.Milliseconds(), MarginMS: cfg.DisconnectMargin.Milliseconds(),
		Bounced: crashBounced{Peers: len(bps.nodes), Kicked: bps.kickedCount(), Reconnected: reconnected},
		Checks:  st.Checks, Advisories: st.Advisories, Stalls: stalls,
	}
	for _, id := range bps.ids {
		if _, ok := fast.get(id); ok {
			res.Bounced.FalseDeathsFast++
			res.FalseDeaths++
			res.FalseDeathsFast++
		}
		if _, ok := slow.get(id); ok {
			res.Bounced.FalseDeathsTimeout++
			res.FalseDeaths++
			res.FalseDeathsTimout++
		}
	}
	for f, fl := range fleets {
		res.BeatsSent += fl.sent
		ci := crashInterval{IntervalMS: intervals[f].Milliseconds(), Peers: per, Victims: len(victims[f])}
		isVictim := map[int]bool{}
		for _, i := range victims[f] {
			isVictim[i] = true
		}
		for path, log := range []*deadLog{fast, slow} {
			cp := crashPath{ByReason: map[string]int{}}
			var ds []float64
			for i, id := range fl.ids {
				ev, ok := log.get(id)
				switch {
				case !isVictim[i] && ok, isVictim[i] && ok && ev.Time.Before(fl.killed[i]):
					res.FalseDeaths++
					if path == 0 {
						res.FalseDeathsFast++
					} else {
						res.FalseDeathsTimout++
					}
				case isVictim[i] && ok:
					ds = append(ds, ms(ev.Time.Sub(fl.killed[i])))
					cp.ByReason[string(ev.Reason)]++
				case isVictim[i]:
					cp.Missed++
				}
			}
			cp.Detected = len(ds)
			cp.P50MS, cp.P99MS, cp.MaxMS = round3(quantile(ds, .5)), round3(quantile(ds, .99)), round3(quantile(ds, 1))
			if path == 0 {
				ci.FastPath = cp
			} else {
				ci.Timeout = cp
			}
		}
		if ci.Timeout.P50MS > 0 && ci.Timeout.P99MS > 0 {
			ci.P50Ratio = round3(ci.FastPath.P50MS / ci.Timeout.P50MS)
			ci.P99Ratio = round3(ci.FastPath.P99MS / ci.Timeout.P99MS)
		}
		res.Intervals = append(res.Intervals, ci)
	}
	res.RunS = round3(time.Since(began).Seconds())
	return e.emit(res)
}

// bouncedPeers are the live peers whose connections the server kicks.
type bouncedPeers struct {
	ids    []string
	conns  []*nats.Conn
	nodes  []*node.Node
	kickAt []time.Time // set before run
	kicked []bool      // written by run; read after it returned
}

// newBouncedPeers dials b live nodes, spread evenly over the intervals,
// each on a connection of its own named as hbmesh names a node's, with
// hbmesh's reconnect policy.
func newBouncedPeers(url string, b int, intervals []time.Duration) (*bouncedPeers, error) {
	bp := &bouncedPeers{kickAt: make([]time.Time, b), kicked: make([]bool, b)}
	for i := range b {
		iv := intervals[i%len(intervals)]
		id := "bounced-" + iv.String() + "-" + strconv.Itoa(i/len(intervals))
		nc, _, err := victimConn(url, id)
		if err != nil {
			bp.close()
			return nil, err
		}
		bp.conns = append(bp.conns, nc)
		cfg := node.DefaultConfig()
		cfg.ID, cfg.Interval = id, iv
		nd, err := node.New(nc, cfg)
		if err != nil {
			bp.close()
			return nil, fmt.Errorf("bench: %w", err)
		}
		bp.ids, bp.nodes = append(bp.ids, id), append(bp.nodes, nd)
	}
	return bp, nil
}

// run runs the nodes until ctx is done, and has srv kick each node's
// connection at its kickAt meanwhile. It returns once every node has.
func (bp *bouncedPeers) run(ctx context.Context, srv *embedded.Server) error {
	errs := make([]error, len(bp.nodes))
	var wg sync.WaitGroup
	for i, nd := range bp.nodes {
		wg.Go(func() { errs[i] = nd.Run(ctx) })
	}
	order := make([]int, len(bp.nodes))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return bp.kickAt[a].Compare(bp.kickAt[b]) })
	for _, i := range order {
		if pause.For(ctx, time.Until(bp.kickAt[i])) != nil {
			break
		}
		if cid, err := bp.conns[i].GetClientID(); err == nil && srv.NATS().DisconnectClientByID(cid) == nil {
			bp.kicked[i] = true
		}
	}
	<-ctx.Done()
	wg.Wait()
	return errors.Join(errs...)
}

// reconnected counts the nodes that were kicked and are connected again.
func (bp *bouncedPeers) reconnected() int {
	n := 0
	for i, nc := range bp.conns {
		if !bp.kickAt[i].After(time.Now()) && nc.Stats().Reconnects > 0 && nc.IsConnected() {
			n++
		}
	}
	return n
}

func (bp *bouncedPeers) kickedCount() int {
	n := 0
	for _, k := range bp.kicked {
		if k {
			n++
		}
	}
	return n
}

func (bp *bouncedPeers) close() {
	for _, nc := range bp.conns {
		nc.Close()
	}
}

// victimConn dials a victim's own connection, named as hbmesh names a
// node's, with hbmesh's reconnect policy; it returns the window the name
// announces.
func victimConn(url, id string) (*nats.Conn, time.Duration, error) {
	opts := crashVictimOpts()
	o := nats.GetDefaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, 0, err
		}
	}
	o.Url = url
	window, _ := node.ReconnectWindow(&o)
	name, err := wire.NodeConn{Prefix: wire.DefaultPrefix, ID: id, Reconnect: window}.Name()
	if err != nil {
		return nil, 0, err
	}
	nc, err := nats.Connect(url, append(opts, nats.Name(name))...)
	if err != nil {
		return nil, 0, fmt.Errorf("bench: connect victim %s: %w", id, err)
	}
	return nc, window, nil
}

// answerProbes answers probes of the fleet's node i on nc, as a live node
// does, with its latest beat.
func answerProbes(nc *nats.Conn, fl *fleet, i int) error {
	subj := wire.MustSubjects(wire.DefaultPrefix).Probe(fl.ids[i])
	b := fl.beat
	b.ID = fl.ids[i]
	var buf []byte
	_, err := nc.Subscribe(subj, func(m *nats.Msg) {
		b.Seq, b.TS = max(fl.seqOf(i), 1), time.Now().UTC()
		buf = wire.AppendBeat(buf[:0], &b)
		_ = m.Respond(buf)
	})
	if err != nil {
		return fmt.Errorf("bench: subscribe %s: %w", subj, err)
	}
	return nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
