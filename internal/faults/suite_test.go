//go:build faults

package faults_test

import (
	"cmp"
	"flag"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/internal/faultproxy"
	"github.com/hbmesh/hbmesh/monitor"
)

var (
	trials   = flag.Int("trials", envInt("HBMESH_FAULT_TRIALS", 3), "trials per scenario (env HBMESH_FAULT_TRIALS)")
	interval = flag.Duration("interval", time.Second, "node beat interval; 1s is the product default")
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// missBound is how long after its reference time a death may take before
// it counts as missed: the dead timeout plus this.
const missBound = 10 * time.Second

// result is one row of the report.
type result struct {
	name        string
	trials      int
	missed      int
	falseDeaths int
	detect      []time.Duration        // dead event − reference − dead timeout (− 0 with raw)
	ref         string                 // what detection is measured from
	raw         bool                   // detect is dead − reference, the timeout not subtracted
	reasons     map[monitor.Reason]int // the measured dead events' reasons
	notes       []string
	problems    []string // anything that fails the suite
}

func (r *result) failed() bool { return r.missed > 0 || r.falseDeaths > 0 || len(r.problems) > 0 }

func (r *result) problem(format string, args ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

// window is a span in which a node is faulted, so a dead event for it is
// expected. A zero to means the fault is permanent (the node was killed).
type window struct{ from, to time.Time }

// sc is one scenario (or, for scenarios that rebuild everything per trial,
// one trial) in progress: its processes, its monitor and its faults.
type sc struct {
	t       *testing.T
	h       *harness
	res     *result
	mon     *monitorProc
	procs   []*proc
	windows map[string][]window
	late    []lateCheck
	seen    int // len(res.problems) when this sc began: res may be shared by trials
	// httpPort is the monitor's --http port, when it has one
	// (monitorHTTP), for its /metrics and API.
	httpPort int
}

// lateCheck is a missed death whose verdict may still have come, late.
type lateCheck struct {
	id        string
	from, ref time.Time
}

func (h *harness) scenario(t *testing.T, res *result) *sc {
	return &sc{t: t, h: h, res: res, windows: map[string][]window{}, seen: len(res.problems)}
}

func (s *sc) server(name string, port, clusterPort int, routes []int) *proc {
	s.t.Helper()
	p := s.h.spawn(s.t, name, nil, serverArgs(name, port, clusterPort, routes)...)
	s.procs = append(s.procs, p)
	if err := waitPort(fmt.Sprintf("127.0.0.1:%d", port), readyTimeout); err != nil {
		s.t.Fatalf("server %s: %v\n%s", name, err, p.tail(20))
	}
	return p
}

func (s *sc) monitor(url string) *monitorProc {
	s.t.Helper()
	s.mon = s.h.startMonitor(s.t, "monitor", url)
	s.procs = append(s.procs, s.mon.proc)
	return s.mon
}

func (s *sc) node(id, url string, extra ...string) *proc {
	s.t.Helper()
	args := append([]string{"node", "-s", url, "--id", id, "--interval", s.h.interval.String(), "--log-format", "json"}, extra...)
	p := s.h.spawn(s.t, id, nil, args...)
	s.procs = append(s.procs, p)
	return p
}

// alive waits until the monitor has seen each id alive since after.
func (s *sc) alive(after time.Time, ids ...string) {
	s.t.Helper()
	for _, id := range ids {
		if _, err := s.mon.await(id, monitor.StateAlive, after, readyTimeout); err != nil {
			s.t.Fatalf("setup: %v", err)
		}
	}
}

// oneServer starts a single NATS server on a free port and returns both.
func (s *sc) oneServer() (port int, url string) {
	s.t.Helper()
	port = freePort(s.t)
	s.server("nats", port, 0, nil)
	return port, natsURL(port)
}

// monitored starts one server, the monitor on it and n bystanders, and
// waits until the monitor has seen every bystander alive.
func (s *sc) monitored(bystanders int) (port int, url string) {
	s.t.Helper()
	port, url = s.oneServer()
	s.monitor(url)
	s.alive(time.Time{}, s.bystanders(url, bystanders)...)
	return port, url
}

// victim starts the node a trial will fault, waits until the monitor has
// seen it alive, then lets a random phase of the beat cycle pass.
func (s *sc) victim(id, url string, extra ...string) *proc {
	s.t.Helper()
	n := s.node(id, url, extra...)
	s.alive(time.Time{}, id)
	s.phase()
	return n
}

// faultNow records that id is faulted from now on and returns the time.
func (s *sc) faultNow(id string) time.Time {
	at := time.Now()
	s.fault(id, at)
	return at
}

// pause lets the scenario's schedule run on: it waits for time to pass,
// not for a condition.
func (s *sc) pause(d time.Duration) {
	if d > 0 {
		time.Sleep(d)
	}
}

// phase is a random pause of two to three intervals, so faults land at a
// random point of the beat cycle.
func (s *sc) phase() { s.pause(2*s.h.interval + rand.N(s.h.interval)) }

// fault records that id is faulted from at on, so a dead verdict is due.
func (s *sc) fault(id string, at time.Time) {
	s.windows[id] = append(s.windows[id], window{from: at})
}

// expectDeath waits for id to be reported dead after its fault, at most
// the dead timeout plus missBound after ref (when the monitor could first
// know). With measure, the detection time is recorded. It returns the
// dead event, or false if the death was missed.
func (s *sc) expectDeath(id string, ref time.Time, measure bool) (event, bool) {
	w := s.windows[id]
	from := w[len(w)-1].from
	within := time.Until(ref.Add(s.h.timeout + missBound))
	ev, err := s.mon.await(id, monitor.StateDead, from, within)
	if err != nil {
		s.res.missed++
		s.res.problem("missed death: %v", err)
		s.late = append(s.late, lateCheck{id: id, from: from, ref: ref})
		return event{}, false
	}
	if measure {
		d := ev.At.Sub(ref)
		if !s.res.raw {
			d -= s.h.timeout
		}
		s.res.detect = append(s.res.detect, d)
		if s.res.reasons == nil {
			s.res.reasons = map[monitor.Reason]int{}
		}
		s.res.reasons[ev.Reason]++
	}
	return ev, true
}

// recovered waits for id to be reported alive again after the fault was
// lifted at healed, and closes its fault window there.
func (s *sc) recovered(id string, healed time.Time) {
	w := s.windows[id]
	ev, err := s.mon.await(id, monitor.StateAlive, healed, s.h.timeout+missBound)
	if err != nil {
		s.res.problem("no recovery: %v", err)
		w[len(w)-1].to = time.Now()
		return
	}
	w[len(w)-1].to = ev.At
}

// finish counts every dead event outside a fault window as a false death
// and, if the scenario failed, logs the evidence. Scenarios defer it, so
// it runs (also after t.Fatal) before t.Cleanup tears the processes down.
func (s *sc) finish() {
	if s.mon == nil {
		return
	}
	evs := s.mon.snapshot()
	for _, ev := range evs {
		if ev.State != monitor.StateDead {
			continue
		}
		expected := slices.ContainsFunc(s.windows[ev.ID], func(w window) bool {
			return !ev.At.Before(w.from) && (w.to.IsZero() || !ev.At.After(w.to))
		})
		if !expected {
			s.res.falseDeaths++
			s.res.problem("false death: %v", ev)
		}
	}
	for _, l := range s.late {
		i := slices.IndexFunc(evs, func(ev event) bool { return ev.ID == l.id && ev.State == monitor.StateDead && !ev.At.Before(l.from) })
		if i < 0 {
			s.res.notes = append(s.res.notes, fmt.Sprintf("%s never reported dead", l.id))
			continue
		}
		s.res.notes = append(s.res.notes, fmt.Sprintf("missed %s was reported dead %s after the timeout", l.id, ms(evs[i].At.Sub(l.ref)-s.h.timeout)))
	}
	s.mon.mu.Lock()
	for _, line := range s.mon.bad {
		s.res.problem("unparsable monitor line: %q", line)
	}
	s.mon.mu.Unlock()
	mine := s.res.problems[s.seen:]
	if len(mine) == 0 && !s.t.Failed() {
		return
	}
	s.t.Errorf("%s", strings.Join(mine, "; "))
	var b strings.Builder
	fmt.Fprintf(&b, "monitor events:\n")
	for _, ev := range evs {
		fmt.Fprintf(&b, "  %v\n", ev)
	}
	for _, p := range s.procs {
		fmt.Fprintf(&b, "--- %s (%s), last lines:\n%s\n", p.name, p.logPath, p.tail(15))
	}
	s.t.Log(b.String())
}

func (s *sc) proxy(target string) *faultproxy.Proxy {
	s.t.Helper()
	p, err := faultproxy.New("127.0.0.1:0", target)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { p.Close() })
	return p
}

// scenarioDef is one scenario of the suite.
type scenarioDef struct {
	name string
	ref  string // what detection time is measured from
	run  func(h *harness, t *testing.T, res *result)
}

func scenarios() []scenarioDef {
	return []scenarioDef{
		{"node SIGKILL", "kill", nodeKill},
		{"node SIGSTOP, then SIGCONT", "SIGSTOP", nodeStop},
		{"node partitioned from NATS (blackhole), then healed", "blackhole", nodePartition},
		{"5% beat loss on live nodes", "canary kill", beatLoss},
		{"monitor blackholed from NATS 30s; a node killed meanwhile", "heal", monitorOutage},
		{"monitor SIGSTOP 10s; a node killed meanwhile", "SIGCONT", monitorStop},
		{"NATS server SIGKILLed and restarted on its port", "canary kill", serverRestart},
		{"1 of 3 cluster servers SIGKILLed", "canary kill", clusterFailover},
		{"fast path: connection cut and restored within the reconnect window", "—", fastCut},
		{"fast path: the node's server killed in a 3-server cluster", "—", fastServerKilled},
		{"fast path: NATS server SIGTERMed and restarted", "canary kill", fastRestart},
		{"fast path: the server kicks the node's connection", "—", fastKick},
		{"fast path: the node disconnected as a slow consumer", "—", fastSlowConsumer},
		{"fast path: node SIGKILL, node and monitor on different cluster servers", "kill (crash → dead, raw)", fastClusterKill},
	}
}

func TestFaultSuite(t *testing.T) {
	if *trials < 1 {
		t.Fatalf("-trials %d: want at least 1", *trials)
	}
	h := &harness{interval: *interval}
	h.timeout = time.Duration(monitor.DefaultConfig().DeadAfter * float64(h.interval))
	artifacts := os.Getenv("HBMESH_ARTIFACTS")
	h.logDir = t.TempDir()
	if artifacts != "" {
		h.logDir = filepath.Join(artifacts, "faults-logs")
		if err := os.MkdirAll(h.logDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	h.bin = build(t, t.TempDir())
	t.Logf("built hbmesh in %v; logs in %s", time.Since(start).Round(time.Millisecond), h.logDir)

	var results []*result
	for _, def := range scenarios() {
		res := &result{name: def.name, ref: def.ref, raw: strings.HasSuffix(def.ref, "raw)")}
		results = append(results, res)
		began := time.Now()
		ok := t.Run(strings.NewReplacer(" ", "_", ",", "", ";", "").Replace(def.name), func(t *testing.T) {
			def.run(h, t, res)
		})
		res.notes = append(res.notes, fmt.Sprintf("%v", time.Since(began).Round(time.Second)))
		if !ok && res.problems == nil {
			res.problem("scenario aborted, see log")
		}
	}
	report := table(h, results, time.Since(start))
	t.Log("\n" + report)
	if artifacts != "" {
		if err := os.WriteFile(filepath.Join(artifacts, "faults.md"), []byte(report), 0o644); err != nil {
			t.Error(err)
		}
	}
	for _, r := range results {
		for _, p := range r.problems {
			t.Errorf("%s: %s", r.name, p)
		}
	}
}

// table renders the results as markdown.
func table(h *harness, results []*result, took time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Beat interval %v, dead timeout %v (DeadAfter %v × interval, monitor defaults); %d trials per scenario; %v in all.\n\n",
		h.interval, h.timeout, monitor.DefaultConfig().DeadAfter, *trials, took.Round(time.Second))
	b.WriteString("| scenario | trials | missed deaths | false deaths | detection p50 − timeout | detection p99 − timeout | measured from | dead by | notes, wall time |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---|---|---|\n")
	for _, r := range results {
		if r.trials == 0 && len(r.problems) == 0 {
			continue // not selected by -run
		}
		p50, p99 := "—", "—"
		if len(r.detect) > 0 {
			p50, p99 = ms(percentile(r.detect, 0.50)), ms(percentile(r.detect, 0.99))
		}
		var by []string
		for _, reason := range slices.Sorted(maps.Keys(r.reasons)) {
			by = append(by, fmt.Sprintf("%s %d", reason, r.reasons[reason]))
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %s | %s | %s | %s | %s |\n",
			r.name, r.trials, r.missed, r.falseDeaths, p50, p99, r.ref, strings.Join(by, ", "), strings.Join(r.notes, "; "))
	}
	return b.String()
}

func ms(d time.Duration) string { return fmt.Sprintf("%+d ms", d.Milliseconds()) }

// percentile is the nearest-rank percentile.
func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.SortFunc(s, cmp.Compare)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(i, 0)]
}

// --- the scenarios ---

// bystanders starts n nodes that are never faulted: a dead verdict for any
// of them is a false death.
func (s *sc) bystanders(url string, n int) []string {
	var ids []string
	for i := range n {
		id := fmt.Sprintf("bystander-%d", i)
		s.node(id, url)
		ids = append(ids, id)
	}
	return ids
}

func nodeKill(h *harness, t *testing.T, res *result) {
	s := h.scenario(t, res)
	defer s.finish()
	_, url := s.monitored(2)
	for i := range *trials {
		id := fmt.Sprintf("kill-%d", i)
		n := s.victim(id, url)
		at := s.faultNow(id)
		n.kill()
		s.expectDeath(id, at, true)
		res.trials++
	}
}

func nodeStop(h *harness, t *testing.T, res *result) {
	s := h.scenario(t, res)
	defer s.finish()
	_, url := s.monitored(2)
	for i := range *trials {
		id := fmt.Sprintf("stop-%d", i)
		n := s.victim(id, url)
		at := s.faultNow(id)
		n.signal(syscall.SIGSTOP)
		s.expectDeath(id, at, true)
		cont := time.Now()
		n.signal(syscall.SIGCONT)
		s.recovered(id, cont)
		n.stop(5 * time.Second)
		res.trials++
	}
}

func nodePartition(h *harness, t *testing.T, res *result) {
	s := h.scenario(t, res)
	defer s.finish()
	port, _ := s.monitored(2)
	for i := range *trials {
		id := fmt.Sprintf("partitioned-%d", i)
		px := s.proxy(fmt.Sprintf("127.0.0.1:%d", port))
		n := s.victim(id, px.URL())
		at := s.faultNow(id)
		px.Blackhole()
		s.expectDeath(id, at, true)
		healed := time.Now()
		px.Heal()
		s.recovered(id, healed)
		n.stop(5 * time.Second)
		px.Close()
		res.trials++
	}
}

func beatLoss(h *harness, t *testing.T, res *result) {
	s := h.scenario(t, res)
	defer s.finish()
	_, url := s.oneServer()
	s.monitor(url)
	const lossy = 5
	window := 20 * h.interval
	var ids []string
	for i := range lossy {
		id := fmt.Sprintf("lossy-%d", i)
		s.node(id, url, "--drop-beats", "0.05")
		ids = append(ids, id)
	}
	s.alive(time.Time{}, ids...)
	for i := range *trials {
		// Every lossy node must stay alive through the window; then a
		// canary kill proves the monitor still convicts.
		canary := fmt.Sprintf("canary-%d", i)
		c := s.node(canary, url, "--drop-beats", "0.05")
		s.alive(time.Time{}, canary)
		s.pause(window)
		at := s.faultNow(canary)
		c.kill()
		s.expectDeath(canary, at, true)
		res.trials++
	}
	suspects := 0
	for _, ev := range s.mon.snapshot() {
		if ev.State == monitor.StateSuspect {
			suspects++
		}
	}
	res.notes = append(res.notes, fmt.Sprintf("%d nodes × %v per trial, %d suspect verdicts (probes answered)", lossy, window, suspects))
}

func monitorOutage(h *harness, t *testing.T, res *result) {
	const outage, killAfter = 30 * time.Second, 5 * time.Second
	s := h.scenario(t, res)
	defer s.finish()
	port, url := s.oneServer()
	px := s.proxy(fmt.Sprintf("127.0.0.1:%d", port))
	s.monitor(px.URL())
	s.alive(time.Time{}, s.bystanders(url, 3)...)
	for i := range *trials {
		id := fmt.Sprintf("victim-%d", i)
		n := s.victim(id, url)
		t0 := time.Now()
		px.Blackhole()
		s.pause(killAfter)
		s.fault(id, time.Now())
		n.kill()
		s.pause(time.Until(t0.Add(outage)))
		healed := time.Now()
		px.Heal()
		s.expectDeath(id, healed, true)
		res.trials++
	}
}

func monitorStop(h *harness, t *testing.T, res *result) {
	const stop, killAfter = 10 * time.Second, 3 * time.Second
	s := h.scenario(t, res)
	defer s.finish()
	_, url := s.monitored(3)
	for i := range *trials {
		id := fmt.Sprintf("victim-%d", i)
		n := s.victim(id, url)
		t0 := time.Now()
		s.mon.signal(syscall.SIGSTOP)
		s.pause(killAfter)
		s.fault(id, time.Now())
		n.kill()
		s.pause(time.Until(t0.Add(stop)))
		cont := time.Now()
		s.mon.signal(syscall.SIGCONT)
		s.expectDeath(id, cont, true)
		res.trials++
	}
}

func serverRestart(h *harness, t *testing.T, res *result) {
	s := h.scenario(t, res)
	defer s.finish()
	port := freePort(t)
	srv := s.server("nats", port, 0, nil)
	url := natsURL(port)
	s.monitor(url)
	s.alive(time.Time{}, s.bystanders(url, 4)...)
	observe := 4 * h.timeout
	for i := range *trials {
		canary := fmt.Sprintf("canary-%d", i)
		c := s.node(canary, url)
		s.alive(time.Time{}, canary)
		s.phase()
		srv.kill()
		srv = s.server("nats", port, 0, nil)
		s.pause(observe)
		// The canary lived through the restart; killing it now proves
		// the monitor reconnected and convicts again.
		at := s.faultNow(canary)
		c.kill()
		s.expectDeath(canary, at, true)
		res.trials++
	}
	res.notes = append(res.notes, fmt.Sprintf("observed %v after each restart", observe))
}

func clusterFailover(h *harness, t *testing.T, res *result) {
	observe := 4 * h.timeout
	for i := range *trials {
		t.Run(fmt.Sprintf("trial-%d", i), func(t *testing.T) {
			s := h.scenario(t, res)
			defer s.finish()
			var ports, cports [3]int
			for j := range 3 {
				ports[j], cports[j] = freePort(t), freePort(t)
			}
			var wg sync.WaitGroup
			servers := make([]*proc, 3)
			for j := range 3 {
				var routes []int
				for k := range 3 {
					if k != j {
						routes = append(routes, cports[k])
					}
				}
				name := fmt.Sprintf("nats-%d", j)
				servers[j] = s.h.spawn(t, name, nil, serverArgs(name, ports[j], cports[j], routes)...)
				s.procs = append(s.procs, servers[j])
			}
			errs := make([]error, 3)
			for j := range 3 {
				wg.Go(func() { errs[j] = waitPort(fmt.Sprintf("127.0.0.1:%d", ports[j]), readyTimeout) })
			}
			wg.Wait()
			for j, err := range errs {
				if err != nil {
					t.Fatalf("server %d: %v\n%s", j, err, servers[j].tail(20))
				}
			}
			// The monitor sits on server 0, which survives; nodes are
			// spread over all three, each given only its own server's URL.
			s.monitor(natsURL(ports[0]))
			nodes := map[string]*proc{}
			var ids, onVictim []string
			for k := range 6 {
				id := fmt.Sprintf("n%d-on-%d", k, k%3)
				nodes[id] = s.node(id, natsURL(ports[k%3]))
				ids = append(ids, id)
				if k%3 == 2 {
					onVictim = append(onVictim, id)
				}
			}
			s.alive(time.Time{}, ids...)
			s.phase()
			servers[2].kill()
			s.pause(observe)
			// A node that had to fail over is the canary: if it is still
			// judged correctly, failover worked end to end.
			canary := onVictim[0]
			at := s.faultNow(canary)
			nodes[canary].kill()
			s.expectDeath(canary, at, true)
			res.trials++
		})
	}
	res.notes = append(res.notes, fmt.Sprintf("6 nodes over 3 servers, observed %v after each kill", observe))
}
