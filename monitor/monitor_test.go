package monitor_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/hbmesh/hbmesh/clock"
	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/node"
	"github.com/hbmesh/hbmesh/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	fast     = 100 * time.Millisecond // beat interval used by these tests
	deadline = 15 * time.Second       // generous bound for anything to happen
)

// recorder collects a monitor's events and lets a test wait for one.
type recorder struct {
	mu     sync.Mutex
	events []monitor.Event
	notify chan struct{}
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{}, 1)} }

func (r *recorder) add(e monitor.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func (r *recorder) all() []monitor.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]monitor.Event(nil), r.events...)
}

func (r *recorder) count(id string, st monitor.State) int {
	n := 0
	for _, e := range r.all() {
		if e.ID == id && e.State == st {
			n++
		}
	}
	return n
}

// wait blocks until pred holds for some event, or fails the test.
func (r *recorder) wait(t *testing.T, what string, pred func(monitor.Event) bool) monitor.Event {
	t.Helper()
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	for {
		for _, e := range r.all() {
			if pred(e) {
				return e
			}
		}
		select {
		case <-r.notify:
		case <-timer.C:
			t.Fatalf("no event %s within %v; events: %v", what, deadline, r.all())
		}
	}
}

func (r *recorder) waitState(t *testing.T, id string, st monitor.State) monitor.Event {
	t.Helper()
	return r.wait(t, id+" "+st.String(), func(e monitor.Event) bool { return e.ID == id && e.State == st })
}

// startMonitor runs a monitor on nc until the test ends.
func startMonitor(t *testing.T, nc *nats.Conn, mod func(*monitor.Config)) (*monitor.Monitor, *recorder) {
	t.Helper()
	rec := newRecorder()
	cfg := monitor.DefaultConfig()
	cfg.OnEvent = rec.add
	cfg.SelfCheckInterval = 50 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	m, err := monitor.New(nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	run(t, m.Run)
	waitReady(t, m)
	return m, rec
}

// run runs fn until the test ends and checks that it returned cleanly.
func run(t *testing.T, fn func(context.Context) error) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil && !errors.Is(err, monitor.ErrClosed) && !strings.Contains(err.Error(), "closed") {
					t.Errorf("Run returned %v", err)
				}
			case <-time.After(deadline):
				t.Errorf("Run did not return within %v of cancel", deadline)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func waitReady(t *testing.T, m *monitor.Monitor) {
	t.Helper()
	natstest.Eventually(t, "monitor ready", func() bool { return m.Ready() == nil })
}

func startNode(t *testing.T, url string, id string, mod func(*node.Config)) (*node.Node, *nats.Conn, context.CancelFunc) {
	t.Helper()
	nc := natstest.Connect(t, url)
	cfg := node.DefaultConfig()
	cfg.ID, cfg.Interval = id, fast
	if mod != nil {
		mod(&cfg)
	}
	n, err := node.New(nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, n.Run)
	return n, nc, stop
}

func TestLifecycle(t *testing.T) {
	srv := natstest.Start(t)
	_, rec := startMonitor(t, natstest.Connect(t, srv.ClientURL()), nil)

	_, _, stopA := startNode(t, srv.ClientURL(), "a", nil)
	_, ncB, _ := startNode(t, srv.ClientURL(), "b", nil)
	first := rec.waitState(t, "a", monitor.StateAlive)
	if first.Prev != monitor.StateUnknown || first.Reason != monitor.ReasonFirstBeat {
		t.Errorf("first event = %+v", first)
	}
	rec.waitState(t, "b", monitor.StateAlive)

	t.Run("goodbye is left", func(t *testing.T) {
		stopA()
		rec.waitState(t, "a", monitor.StateLeft)
	})
	t.Run("cut connection is dead", func(t *testing.T) {
		ncB.Close() // no goodbye can get out
		e := rec.waitState(t, "b", monitor.StateDead)
		if e.Prev != monitor.StateSuspect {
			t.Errorf("dead came from %v, want suspect", e.Prev)
		}
	})
	if n := rec.count("a", monitor.StateDead); n != 0 {
		t.Errorf("a said goodbye but was declared dead %d times", n)
	}
}

func TestFrozenNodeDies(t *testing.T) {
	srv := natstest.Start(t)
	nc := natstest.Connect(t, srv.ClientURL())
	_, rec := startMonitor(t, nc, nil)
	subj := wire.MustSubjects("hb")
	// A frozen process: its probe subscription exists but never answers.
	frozen := natstest.Connect(t, srv.ClientURL())
	if _, err := frozen.Subscribe(subj.Probe("ice"), func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	publishBeat(t, frozen, beat("ice", "b", 1))
	rec.waitState(t, "ice", monitor.StateAlive)
	rec.waitState(t, "ice", monitor.StateSuspect)
	rec.waitState(t, "ice", monitor.StateDead)
}

func TestDroppedBeatsButProbesAnswered(t *testing.T) {
	srv := natstest.Start(t)
	// At the default DeadAfter a probe has about 100 ms to come back at
	// this interval; under a loaded CI machine one late answer made the
	// peer dead, which is right, but not what this test is about. Ten
	// intervals leave it 800 ms.
	m, rec := startMonitor(t, natstest.Connect(t, srv.ClientURL()), func(c *monitor.Config) { c.DeadAfter = 10 })
	_, _, _ = startNode(t, srv.ClientURL(), "lossy", func(c *node.Config) {
		c.DropBeat = func(seq uint64) bool { return seq > 1 }
	})
	rec.waitState(t, "lossy", monitor.StateSuspect)
	back := rec.wait(t, "lossy back alive", func(e monitor.Event) bool {
		return e.ID == "lossy" && e.State == monitor.StateAlive && e.Prev == monitor.StateSuspect
	})
	if back.Reason != monitor.ReasonProbeAnswered {
		t.Errorf("reason = %q, want %q", back.Reason, monitor.ReasonProbeAnswered)
	}
	// Keep going for a while: suspect/alive cycles, never dead.
	natstest.Eventually(t, "several probe rounds", func() bool { return m.Stats().ProbesAnswered >= 5 })
	if n := rec.count("lossy", monitor.StateDead); n != 0 {
		t.Fatalf("a node that answers probes was declared dead %d times", n)
	}
	if p, _ := m.Peer("lossy"); p.ProbeRTT <= 0 {
		t.Errorf("probe RTT not recorded: %+v", p)
	}
}

func TestRestartDetected(t *testing.T) {
	srv := natstest.Start(t)
	_, rec := startMonitor(t, natstest.Connect(t, srv.ClientURL()), nil)
	first, nc1, stop1 := startNode(t, srv.ClientURL(), "phoenix", nil)
	rec.waitState(t, "phoenix", monitor.StateAlive)
	nc1.Close()
	stop1()
	second, _, _ := startNode(t, srv.ClientURL(), "phoenix", nil)
	e := rec.wait(t, "restart", func(e monitor.Event) bool { return e.ID == "phoenix" && e.Restart })
	if e.PrevBoot != first.Boot() || e.Boot != second.Boot() || e.Reason != monitor.ReasonRestarted {
		t.Errorf("restart event = %+v, want boot %s→%s", e, first.Boot(), second.Boot())
	}
}

func TestTwoMonitorsAgree(t *testing.T) {
	srv := natstest.Start(t)
	_, rec1 := startMonitor(t, natstest.Connect(t, srv.ClientURL()), nil)
	_, rec2 := startMonitor(t, natstest.Connect(t, srv.ClientURL()), nil)
	// A slower beat than the other tests': this compares the monitors'
	// transition sequences, and at 100 ms a monitor starved of CPU for
	// 150 ms (the race detector on a busy 2-core machine) may suspect a
	// live peer that the other does not; suspect is no verdict, and its
	// probe clears it, but the sequences then differ.
	slow := func(c *node.Config) { c.Interval = 4 * fast }
	_, _, stopA := startNode(t, srv.ClientURL(), "a", slow)
	_, ncB, _ := startNode(t, srv.ClientURL(), "b", slow)
	for _, r := range []*recorder{rec1, rec2} {
		r.waitState(t, "a", monitor.StateAlive)
		r.waitState(t, "b", monitor.StateAlive)
	}
	stopA()
	ncB.Close()
	for _, r := range []*recorder{rec1, rec2} {
		r.waitState(t, "a", monitor.StateLeft)
		r.waitState(t, "b", monitor.StateDead)
	}
	seq := func(r *recorder) string {
		var b strings.Builder
		for _, e := range r.all() {
			fmt.Fprintf(&b, "%s:%s>%s(%s) ", e.ID, e.Prev, e.State, e.Reason)
		}
		return b.String()
	}
	// Per peer, the sequence of transitions must be identical.
	for _, id := range []string{"a", "b"} {
		f := func(r *recorder) string {
			var out []string
			for _, e := range r.all() {
				if e.ID == id {
					out = append(out, e.Prev.String()+">"+e.State.String())
				}
			}
			return strings.Join(out, " ")
		}
		if f(rec1) != f(rec2) {
			t.Errorf("monitors disagree on %s:\n%s\n%s", id, seq(rec1), seq(rec2))
		}
	}
}

func TestInvalidIDRefused(t *testing.T) {
	srv := natstest.Start(t)
	nc := natstest.Connect(t, srv.ClientURL())
	for _, id := range []string{"a.b", "a*", "a>", "a b", ""} {
		cfg := node.DefaultConfig()
		cfg.ID = id
		if id == "" {
			cfg.ID, cfg.Host = "x y", "ignored"
		}
		if _, err := node.New(nc, cfg); !errors.Is(err, wire.ErrInvalidID) {
			t.Errorf("node.New(id %q) = %v, want ErrInvalidID", cfg.ID, err)
		}
	}
}

// TestMonitorOutageNoFalseDeaths restarts the NATS server under a monitor
// and its nodes: nobody may be declared dead.
func TestMonitorOutageNoFalseDeaths(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.ClientURL()
	m, rec := startMonitor(t, natstest.Connect(t, url), nil)
	ids := []string{"n1", "n2", "n3"}
	for _, id := range ids {
		startNode(t, url, id, nil)
		rec.waitState(t, id, monitor.StateAlive)
	}
	srv.Shutdown()
	natstest.Eventually(t, "monitor notices the outage", func() bool { return m.Ready() != nil })
	// Stay down for many dead-timeouts.
	timer := time.NewTimer(10 * 3 * fast)
	<-timer.C
	if st := m.Stats(); !st.Impaired || st.Outages == 0 {
		t.Errorf("outage not visible in stats: %+v", st)
	}
	natstest.Start(t, func(c *embedded.Config) { c.Port = portOf(t, url) })
	waitReady(t, m)
	for _, id := range ids {
		natstest.Eventually(t, id+" beating again", func() bool {
			p, ok := m.Peer(id)
			return ok && time.Since(p.LastBeat) < fast
		})
	}
	for _, e := range rec.all() {
		if e.State == monitor.StateDead || e.State == monitor.StateSuspect {
			t.Errorf("false verdict during a server restart: %v", e.String())
		}
	}
}

func portOf(t *testing.T, url string) int {
	t.Helper()
	var p int
	i := strings.LastIndexByte(url, ':')
	if _, err := fmt.Sscanf(url[i+1:], "%d", &p); err != nil {
		t.Fatalf("no port in %q", url)
	}
	return p
}

// TestClusterFailover kills one server of a 3-server cluster. The node on
// it reconnects to a server the cluster advertised, without a false death.
func TestClusterFailover(t *testing.T) {
	servers := natstest.StartCluster(t, 3)
	m, rec := startMonitor(t, natstest.Connect(t, servers[0].ClientURL()), nil)
	// The node knows only server 1; it must learn the others from INFO.
	n, _, _ := startNode(t, servers[1].ClientURL(), "roamer", func(c *node.Config) { c.Interval = 200 * time.Millisecond })
	natstest.WaitInterest(t, servers[1], wire.MustSubjects("hb").Beat("roamer"))
	rec.waitState(t, "roamer", monitor.StateAlive)
	seqBefore := n.Seq()
	servers[1].Shutdown()
	natstest.Eventually(t, "beats flowing through another server", func() bool {
		p, ok := m.Peer("roamer")
		return ok && p.Seq > seqBefore+5
	})
	for _, e := range rec.all() {
		if e.ID == "roamer" && e.State == monitor.StateDead {
			t.Fatalf("false death on failover: %v", e.String())
		}
	}
}

// gatedClock is the real clock with a gate: while it is shut, Now blocks.
// Shutting it freezes every goroutine of the monitor that reads the time,
// the one draining the beat queue among them, while NATS keeps delivering.
type gatedClock struct {
	clock.Clock
	mu   sync.Mutex
	open chan struct{}
}

func newGatedClock() *gatedClock {
	g := &gatedClock{Clock: clock.Real(), open: make(chan struct{})}
	close(g.open)
	return g
}

func (g *gatedClock) Now() time.Time {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	<-open
	return g.Clock.Now()
}

func (g *gatedClock) shut() { g.mu.Lock(); g.open = make(chan struct{}); g.mu.Unlock() }
func (g *gatedClock) lift() { g.mu.Lock(); close(g.open); g.mu.Unlock() }

// TestFullBeatQueueDropsAreCounted fills a tiny beat queue while the
// monitor cannot drain it: NATS drops the overflow, and every beat is
// accounted for: accepted, or counted as dropped, never silently lost.
func TestFullBeatQueueDropsAreCounted(t *testing.T) {
	srv := natstest.Start(t)
	nc := natstest.Connect(t, srv.ClientURL())
	clk := newGatedClock()
	m, _ := startMonitor(t, nc, func(c *monitor.Config) {
		c.Clock, c.MaxBacklog, c.BeatQueue = clk, 1, 2
	})
	pub := natstest.Connect(t, srv.ClientURL())
	subj := wire.MustSubjects(wire.DefaultPrefix)

	const sent = 20
	in0 := nc.Stats().InMsgs
	clk.shut()
	ts := time.Now().Add(-time.Minute)
	for seq := range uint64(sent) {
		b := wire.Beat{V: wire.Version, ID: "burst", Host: "h", Boot: "0123456789abcdef", Seq: seq + 1,
			TS: ts.Add(time.Duration(seq) * time.Second), IntervalMS: 1000, Status: wire.StatusAlive}
		if err := pub.Publish(subj.Beat("burst"), wire.AppendBeat(nil, &b)); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	// The monitor's connection has read every beat while the queue could
	// not drain: at most the queue (2) and one batch (up to 3, taken
	// before the drain blocked) got through, the rest was dropped.
	natstest.Eventually(t, "the monitor's connection to read the burst", func() bool {
		return nc.Stats().InMsgs-in0 >= sent
	})
	clk.lift()
	natstest.Eventually(t, "the drops to be counted", func() bool { return m.Stats().Dropped > 0 })
	natstest.Eventually(t, "every beat to be accounted for", func() bool {
		st := m.Stats()
		return st.Beats+st.Dropped == sent
	})
	if st := m.Stats(); st.Dropped < sent-5 {
		t.Errorf("dropped %d of %d beats through a queue of 2; want at least %d", st.Dropped, sent, sent-5)
	}
}

// TestReadyMeansSubscribed: once Ready returns nil, a beat published on
// another connection reaches the monitor. Repeated because the race it
// pins (Ready before the server has the subscription) is lost only
// sometimes.
func TestReadyMeansSubscribed(t *testing.T) {
	srv := natstest.Start(t)
	pub := natstest.Connect(t, srv.ClientURL())
	for i := range 20 {
		m, rec := startMonitor(t, natstest.Connect(t, srv.ClientURL()), nil) // waits for Ready
		id := fmt.Sprintf("r-%d", i)
		publishBeat(t, pub, beat(id, "b", 1))
		if err := pub.Flush(); err != nil {
			t.Fatal(err)
		}
		rec.waitState(t, id, monitor.StateAlive)
		if n := m.Stats().Beats; n != 1 {
			t.Fatalf("monitor %d saw %d beats, want the one sent after Ready", i, n)
		}
	}
}

// TestStatsSnapshotIsACopy: changing a Stats snapshot, or the slices the
// package's list functions return, changes neither the monitor nor what
// those functions return next.
func TestStatsSnapshotIsACopy(t *testing.T) {
	srv := natstest.Start(t)
	m, _ := startMonitor(t, natstest.Connect(t, srv.ClientURL()), nil)
	want := monitor.ProbeRTTBuckets()[0]
	s := m.Stats()
	s.ProbeRTT.Bounds[0], s.Overshoot.Bounds[0] = 99, 99
	monitor.ProbeRTTBuckets()[0], monitor.OvershootBuckets()[0] = 99, 99
	if got := m.Stats().ProbeRTT.Bounds[0]; got != want {
		t.Errorf("writing a snapshot's bounds changed the monitor's: %v", got)
	}
	if m.Stats().Overshoot.Bounds[0] == 99 || monitor.OvershootBuckets()[0] == 99 || monitor.ProbeRTTBuckets()[0] == 99 {
		t.Error("writing returned bounds changed the monitor's or the package's")
	}

	monitor.States()[0] = monitor.StateAlive
	if got := monitor.States(); got[0] != monitor.StateDead || len(got) != 4 {
		t.Errorf("writing the result of States changed the next one: %v", got)
	}
	monitor.RejectReasons()[0] = "x"
	reasons := monitor.RejectReasons()
	if reasons[0] == "x" {
		t.Error("writing the result of RejectReasons changed the next one")
	}
	if rej := m.Stats().Rejected; len(rej) != len(reasons) {
		t.Errorf("Stats.Rejected has %d reasons, RejectReasons %d", len(rej), len(reasons))
	}
	for _, r := range reasons {
		if _, ok := m.Stats().Rejected[r]; !ok {
			t.Errorf("Stats.Rejected has no %q", r)
		}
	}
}

// TestRunOnClosedConnection: Run on a closed connection returns ErrClosed,
// which is also nats.ErrConnectionClosed.
func TestRunOnClosedConnection(t *testing.T) {
	srv := natstest.Start(t)
	nc := natstest.Connect(t, srv.ClientURL())
	m, err := monitor.New(nc, monitor.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	if err := m.Run(context.Background()); !errors.Is(err, monitor.ErrClosed) || !errors.Is(err, nats.ErrConnectionClosed) {
		t.Fatalf("Run on a closed connection = %v, want %v, which is also %v", err, monitor.ErrClosed, nats.ErrConnectionClosed)
	}
}

// TestRunTwice: a second Run returns ErrRunTwice, both while the first
// runs and after it has returned.
func TestRunTwice(t *testing.T) {
	srv := natstest.Start(t)
	nc := natstest.Connect(t, srv.ClientURL())
	m, err := monitor.New(nc, monitor.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, m.Run)
	waitReady(t, m)
	// A cancelled ctx, so that a monitor that ran twice returns rather
	// than hangs.
	done, cancel := context.WithCancel(t.Context())
	cancel()
	if err := m.Run(done); !errors.Is(err, monitor.ErrRunTwice) {
		t.Fatalf("second Run while running = %v, want ErrRunTwice", err)
	}
	stop()
	if err := m.Run(done); !errors.Is(err, monitor.ErrRunTwice) {
		t.Fatalf("second Run after the first returned = %v, want ErrRunTwice", err)
	}
}

// TestEventPrintsAsItsString: OnEvent gets an Event value, and fmt and
// slog print that value with String, not as a raw struct.
func TestEventPrintsAsItsString(t *testing.T) {
	e := monitor.Event{ID: "web-1", State: monitor.StateDead, Prev: monitor.StateSuspect, Reason: monitor.ReasonTimeout}
	var _ fmt.Stringer = e
	if got := fmt.Sprint(e); got != e.String() || !strings.Contains(got, "dead") || !strings.Contains(got, "web-1") {
		t.Errorf("fmt.Sprint(event) = %q, want its String %q", got, e.String())
	}
}

// TestWaitReady: WaitReady returns nil once the monitor is ready, and
// ctx's error, with Ready's reason, when it never becomes ready.
func TestWaitReady(t *testing.T) {
	srv := natstest.Start(t)
	m, _ := startMonitor(t, natstest.Connect(t, srv.ClientURL()), nil)
	if err := m.WaitReady(context.Background()); err != nil {
		t.Fatalf("WaitReady on a ready monitor = %v", err)
	}
	idle, err := monitor.New(natstest.Connect(t, srv.ClientURL()), monitor.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := idle.WaitReady(ctx); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("WaitReady on a monitor never run = %v, want the deadline and \"not running\"", err)
	}
}
