package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/node"
	"github.com/hbmesh/hbmesh/wire"
)

// demoCmd is `hbmesh demo`.
type demoCmd struct {
	Nodes    int           `default:"5" min:"1" max:"1000" placeholder:"N" help:"number of nodes"`
	Interval time.Duration `default:"500ms" min:"100ms" max:"1h" placeholder:"DURATION" help:"beat interval of every node"`
	Chaos    bool          `help:"kill, stop, restart and freeze nodes at random"`
	Duration time.Duration `min:"0s" placeholder:"DURATION" help:"stop after this long (0: run until interrupted)"`
	Port     int           `min:"0" max:"65535" placeholder:"PORT" help:"NATS client port (0: random)"`
	HTTP     httpFlags     `embed:"" group:"http"`
	Stream   string        `name:"events-stream" group:"events" placeholder:"NAME" help:"also keep transitions in the JetStream stream NAME"`
	// Tuning knobs for tests: how often chaos strikes (default: six
	// intervals, enough for a killed node to be declared dead) and how
	// often the summary line is printed.
	ChaosEvery   time.Duration `hidden:"" min:"0s" max:"1h" help:"time between chaos actions (0: six intervals)"`
	SummaryEvery time.Duration `hidden:"" default:"5s" min:"10ms" max:"1h" help:"time between summary lines"`

	Log logFlags `embed:"" group:"log"`
}

func (c *demoCmd) Help() string {
	return `Run everything in one process: a NATS server, --nodes nodes (demo-1 ... demo-N, each over its own TCP connection) and a monitor that prints every transition, plus a state summary every few seconds. Point 'nats sub' at the printed URL to watch the raw beats, or at 'hb.events.>' for the published transitions. The server runs JetStream in a temporary directory; with --http the monitor's dashboard is served too. On Ctrl-C, or after --duration, the nodes stop first with a goodbye, the monitor reports each one left, and a final summary follows.

With --chaos, every few intervals one node is, in turn and at random:

  killed     connection dropped without a goodbye   -> dead, later restarted
  stopped    graceful shutdown with a goodbye       -> left, later restarted
  restarted  replaced at once by a new incarnation  -> restarted
  frozen     its traffic held back for a while      -> suspect, dead, alive

Chaos strikes only a node the monitor sees alive, and restarts or thaws one only once the monitor has reported it dead or left, so every "expect" it prints comes true.`
}

func (c *demoCmd) examples() []string {
	return []string{
		"hbmesh demo --chaos",
		"hbmesh demo --nodes 20 --interval 200ms --duration 1m",
		"hbmesh demo --port 4222 & nats sub 'hb.>' -s nats://127.0.0.1:4222",
		"hbmesh demo --chaos --http 127.0.0.1:8080   # and open http://127.0.0.1:8080/",
	}
}

func (c *demoCmd) Run(ctx context.Context, e *env) (err error) {
	var (
		nodes, interval, chaos, duration, port = c.Nodes, c.Interval, c.Chaos, c.Duration, c.Port
		chaosEvery, summaryEvery               = c.ChaosEvery, c.SummaryEvery
		ln                                     net.Listener
	)
	if c.HTTP.PerPeer && c.HTTP.Addr == "" {
		return usagef("%s needs --http", e.source("per-peer-metrics"))
	}
	if chaosEvery == 0 {
		chaosEvery = 6 * interval
	}
	if duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}
	log := c.Log.logger(e.stderr)
	out := &lineWriter{w: e.stdout}
	if c.HTTP.Addr != "" {
		if ln, err = net.Listen("tcp", c.HTTP.Addr); err != nil {
			return fmt.Errorf("--http: %w", err)
		}
		defer func() {
			if ln != nil {
				ln.Close()
			}
		}()
	}

	srvPort := port
	if srvPort == 0 {
		srvPort = embedded.RandomPort
	}
	// JetStream, in a temporary directory, so --events-stream works.
	srv, err := embedded.New(embedded.Config{Host: "127.0.0.1", Port: srvPort, JetStream: true,
		MeshAccount: embedded.DefaultMeshAccount, Logger: log.With("cmd", "server")})
	if err != nil {
		return usagef("%v", err)
	}
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Shutdown()
	url := srv.ClientURL()
	out.printf("demo: NATS server at %s (watch the beats: nats sub 'hb.*' -s %s)", url, url)

	// The nodes and the monitor outlive ctx: on an interrupt the nodes say
	// goodbye first, the monitor sees them leave, and only then does it
	// stop (see shutdown). Their connections therefore do not derive from
	// ctx, and every path out of runDemo stops them explicitly.
	life := context.WithoutCancel(ctx)
	d := &demo{
		ctx: ctx, life: life, log: log, out: out, interval: interval,
		upstream: strings.TrimPrefix(url, "nats://"),
	}
	defer d.stopAll()

	// The monitor talks to the server in-process: chaos never touches it.
	mcfg := monitor.DefaultConfig()
	mcfg.Logger = log.With("cmd", "monitor")
	mconn, err := (&connFlags{Server: url, Timeout: 5 * time.Second}).dial(life, "hbmesh demo monitor", log,
		nats.InProcessServer(srv.NATS()))
	if err != nil {
		return err
	}
	defer mconn.close()
	started := make(chan *monitor.Monitor, 1)
	// The server's JetStream lives in a temporary directory, so there is
	// nothing to remember across demo runs: no restart memory.
	st := &stack{id: "demo-monitor", http: c.HTTP, events: eventsFlags{Stream: c.Stream}, memory: memoryFlags{Replicas: 1},
		cfg: mcfg, out: sinks{textSink(out)}, ln: ln, log: log,
		onStart: func(m *monitor.Monitor) { started <- m },
		dial:    (&connFlags{Timeout: 5 * time.Second}).dialCheck(url, log, nats.InProcessServer(srv.NATS()))}
	ln = nil // st.run owns it now
	var mwg sync.WaitGroup
	mdone := make(chan error, 1)
	mctx, mcancel := context.WithCancel(life)
	stopMonitor := func() { mcancel(); mwg.Wait() }
	mwg.Go(func() { mdone <- st.run(mctx, mconn) })
	defer stopMonitor()
	var m *monitor.Monitor
	select {
	case m = <-started:
	case <-ctx.Done():
		return nil
	case err := <-mdone:
		if err == nil {
			return nil
		}
		return fmt.Errorf("monitor: %w", err)
	}
	if st.ln != nil {
		out.printf("demo: dashboard at http://%s/", st.ln.Addr())
	}

	roles := []string{"web", "api", "db", "cache", "queue"}
	zones := []string{"eu-1", "us-1", "ap-1"}
	for i := range nodes {
		d.slots = append(d.slots, &demoSlot{
			id:     "demo-" + strconv.Itoa(i+1),
			labels: map[string]string{"role": roles[i%len(roles)], "zone": zones[i%len(zones)]},
		})
	}
	for _, s := range d.slots {
		if err := d.start(s); err != nil {
			return err
		}
	}

	// Show the line-up once every node has been seen, before any chaos.
	d.waitAllAlive(m, 10*d.interval+time.Second)
	d.printSummary(m)

	summary := time.NewTicker(summaryEvery)
	defer summary.Stop()
	var chaosC <-chan time.Time
	if chaos {
		t := time.NewTicker(chaosEvery)
		defer t.Stop()
		chaosC = t.C
	}
	var plan []string
	for {
		select {
		case <-ctx.Done():
			d.shutdown(m, stopMonitor)
			return nil
		case err := <-mdone:
			if err == nil { // only when ctx is done
				return nil
			}
			return fmt.Errorf("monitor: %w", err)
		case <-summary.C:
			d.printSummary(m)
		case <-chaosC:
			d.heal(m)
			if len(plan) == 0 {
				// Every action once per round, in random order, so each
				// kind of transition shows up within a few rounds.
				plan = []string{"kill", "stop", "restart", "freeze"}
				rand.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })
			}
			if d.strike(m, plan[0]) {
				plan = plan[1:]
			}
		}
	}
}

// demo owns the demo's nodes. Only the goroutine running runDemo touches
// it, so it needs no lock.
type demo struct {
	ctx      context.Context // the demo runs until it is done
	life     context.Context // the nodes' connections: never done, they are stopped
	log      *slog.Logger
	out      *lineWriter
	interval time.Duration
	upstream string // server host:port
	slots    []*demoSlot
}

// demoSlot is one node id; successive incarnations reuse it.
type demoSlot struct {
	id     string
	labels map[string]string
	link   *link
	cn     *conn
	cancel context.CancelFunc
	done   chan struct{}
	boot   string        // the incarnation's boot id, as the monitor reports it
	since  time.Time     // when it was started or thawed
	down   bool          // stopped or killed; restarted by a heal once the monitor agrees
	frozen bool          // its link is paused; thawed by a heal once the monitor says dead
	want   monitor.State // what the monitor must report before a heal may act
}

// start runs a new incarnation of s over a fresh link.
func (d *demo) start(s *demoSlot) error {
	l, err := newLink(d.upstream)
	if err != nil {
		return err
	}
	cf := &connFlags{Server: l.URL(), Timeout: 5 * time.Second}
	name, err := cf.nodeConnName(wire.DefaultPrefix, s.id)
	if err != nil {
		l.close()
		return err
	}
	cn, err := cf.dial(d.life, name, d.log)
	if err != nil {
		l.close()
		return err
	}
	n, err := node.New(cn.Conn, node.Config{
		ID: s.id, Host: "demo", Interval: d.interval, Jitter: 0.05, Labels: s.labels,
		Version: buildVersion().Version, Logger: d.log.With("cmd", "node"),
	})
	if err != nil {
		cn.close()
		l.close()
		return err
	}
	ctx, cancel := context.WithCancel(cn.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := n.Run(ctx); err != nil && !errors.Is(err, node.ErrConnClosed) {
			d.log.Warn("demo node stopped", "peer", s.id, "err", err)
		}
	}()
	s.link, s.cn, s.cancel, s.done, s.down, s.frozen = l, cn, cancel, done, false, false
	s.boot, s.since = n.Boot(), time.Now()
	return nil
}

// stop ends the incarnation of s: with a goodbye when graceful, otherwise
// by dropping its connection first so no goodbye can be sent.
func (d *demo) stop(s *demoSlot, graceful bool) {
	if s.cancel == nil {
		return
	}
	if !graceful {
		s.cn.expectClose() // the disconnect below is the point, not a fault
		s.link.close()     // the TCP connection dies under the client
		s.cn.close()
	}
	s.cancel()
	<-s.done
	s.cn.close()
	s.link.close()
	s.cancel, s.down = nil, true
}

func (d *demo) stopAll() {
	for _, s := range d.slots {
		if s.frozen {
			s.link.pause(false)
		}
		d.stop(s, true)
	}
}

// sees reports whether the monitor reports the current incarnation of s
// in state.
func sees(m *monitor.Monitor, s *demoSlot, state monitor.State) bool {
	p, ok := m.Peer(s.id)
	return ok && p.State == state && p.Boot == s.boot
}

// heal restarts the nodes chaos took down and thaws the frozen ones, each
// only once the monitor has reported what chaos announced (dead, left), so
// that a heal never cuts an expectation short; the others wait for a
// later heal.
func (d *demo) heal(m *monitor.Monitor) {
	for _, s := range d.slots {
		if (s.frozen || s.down) && !sees(m, s, s.want) {
			continue
		}
		switch {
		case s.frozen:
			d.out.printf("chaos: thaw %s (expect alive)", s.id)
			s.link.pause(false)
			s.frozen, s.since = false, time.Now()
		case s.down:
			d.out.printf("chaos: start %s again with a new boot (expect restarted)", s.id)
			if err := d.start(s); err != nil {
				d.log.Error("demo node restart", "peer", s.id, "err", err)
			}
		}
	}
}

// strike applies action to a random healthy node; it reports false when
// no node is healthy. Healthy means running, not frozen, up (or thawed)
// for at least two intervals, and reported alive by the monitor in its
// current incarnation: a node the monitor has not yet seen since its
// restart or thaw would give no dead, left or suspect of its own, and a
// second restart would merge with the first into one restarted event.
func (d *demo) strike(m *monitor.Monitor, action string) bool {
	var up []*demoSlot
	for _, s := range d.slots {
		if !s.down && !s.frozen && s.cancel != nil && time.Since(s.since) >= 2*d.interval && sees(m, s, monitor.StateAlive) {
			up = append(up, s)
		}
	}
	if len(up) == 0 {
		return false
	}
	s := up[rand.IntN(len(up))]
	switch action {
	case "kill":
		d.out.printf("chaos: kill %s without goodbye (expect dead)", s.id)
		d.stop(s, false)
		s.want = monitor.StateDead
	case "stop":
		d.out.printf("chaos: stop %s gracefully (expect left)", s.id)
		d.stop(s, true)
		s.want = monitor.StateLeft
	case "restart":
		d.out.printf("chaos: restart %s at once (expect restarted)", s.id)
		d.stop(s, false)
		if err := d.start(s); err != nil {
			d.log.Error("demo node restart", "peer", s.id, "err", err)
		}
	case "freeze":
		d.out.printf("chaos: freeze %s (expect suspect, dead, then alive on thaw)", s.id)
		s.link.pause(true)
		s.frozen, s.want = true, monitor.StateDead
	}
	return true
}

// shutdownWait bounds how long shutdown waits for the monitor to see the
// goodbyes; they normally arrive within milliseconds.
const shutdownWait = 3 * time.Second

// shutdown stops every running node with a goodbye, waits (at most
// shutdownWait) until the monitor has seen them leave, then stops the
// monitor and prints the final summary, so the left lines come before it
// and the summary counts them.
func (d *demo) shutdown(m *monitor.Monitor, stopMonitor func()) {
	running := 0
	for _, s := range d.slots {
		if s.cancel != nil {
			running++
		}
	}
	d.out.printf("demo: stopping %d nodes with a goodbye (expect left)", running)
	d.stopAll()
	pollUntil(shutdownWait, 10*time.Millisecond, func() bool {
		st := m.Stats()
		return st.Peers[monitor.StateAlive]+st.Peers[monitor.StateSuspect] == 0
	})
	stopMonitor()
	d.printSummary(m)
}

// pollUntil polls cond every interval until it holds or max has passed,
// and reports whether it held. Nothing signals the monitor's view of a
// peer changing but its counters, hence the polling.
func pollUntil(max, every time.Duration, cond func() bool) bool {
	tick := time.NewTicker(every)
	defer tick.Stop()
	deadline := time.NewTimer(max)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline.C:
			return cond()
		}
	}
	return true
}

// waitAllAlive waits, at most max, until the monitor sees every node alive.
// Nothing signals that moment, so it polls the monitor's counters.
func (d *demo) waitAllAlive(m *monitor.Monitor, max time.Duration) {
	tick := time.NewTicker(d.interval / 4)
	defer tick.Stop()
	deadline := time.Now().Add(max)
	for m.Stats().Peers[monitor.StateAlive] < len(d.slots) && time.Now().Before(deadline) {
		select {
		case <-d.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (d *demo) printSummary(m *monitor.Monitor) {
	st := m.Stats()
	d.out.printf("alive %d  suspect %d  dead %d  left %d",
		st.Peers[monitor.StateAlive], st.Peers[monitor.StateSuspect], st.Peers[monitor.StateDead], st.Peers[monitor.StateLeft])
}
