package events_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/clock"
	"github.com/hbmesh/hbmesh/internal/cfgerr"
	"github.com/hbmesh/hbmesh/internal/events"
	"github.com/hbmesh/hbmesh/internal/meshtest"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/internal/syncio"
	"github.com/hbmesh/hbmesh/monitor"
)

// peers is a PeerSource whose table the test writes.
type peers struct {
	mu    sync.Mutex
	m     map[string]monitor.PeerInfo
	ready bool
}

func newPeers(ready bool, ps ...monitor.PeerInfo) *peers {
	s := &peers{m: map[string]monitor.PeerInfo{}, ready: ready}
	for _, p := range ps {
		s.m[p.ID] = p
	}
	return s
}

func (s *peers) set(p monitor.PeerInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[p.ID] = p
}

func (s *peers) forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

func (s *peers) setReady() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ready = true
}

func (s *peers) Peer(id string) (monitor.PeerInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.m[id]
	return p, ok
}

// TopPeers returns dead peers only, in id order, as the sink asks.
func (s *peers) TopPeers(limit int, states ...monitor.State) ([]monitor.PeerInfo, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(states) != 1 || states[0] != monitor.StateDead {
		panic("the sink asks for dead peers only")
	}
	var out []monitor.PeerInfo
	n := 0
	for _, id := range slices.Sorted(maps.Keys(s.m)) {
		if p := s.m[id]; p.State == monitor.StateDead {
			n++
			if len(out) < limit {
				out = append(out, p)
			}
		}
	}
	return out, n
}

func (s *peers) Ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ready {
		return errors.New("not running")
	}
	return nil
}

func deadPeer(id string, since time.Time) monitor.PeerInfo {
	return monitor.PeerInfo{ID: id, Host: id + ".example", State: monitor.StateDead, Since: since,
		Reason: monitor.ReasonTimeout, LastBeat: since.Add(-4 * time.Second), Seq: 7, Boot: "boot-" + id, Interval: time.Second}
}

// amReceiver is a real HTTP server standing in for Alertmanager's API v2:
// it records every batch of alerts it accepts.
type amReceiver struct {
	*httptest.Server
	calls atomic.Int64
	got   chan []events.PostableAlert
}

func newAMReceiver(t *testing.T, status func(call int64) int) *amReceiver {
	t.Helper()
	r := &amReceiver{got: make(chan []events.PostableAlert, 256)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n := r.calls.Add(1)
		body, _ := io.ReadAll(req.Body)
		if req.Method != http.MethodPost || req.URL.Path != "/am/api/v2/alerts" || req.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s with content type %q", req.Method, req.URL.Path, req.Header.Get("Content-Type"))
		}
		if got := req.Header.Get("Authorization"); got != "Bearer s3cret" {
			t.Errorf("Authorization %q", got)
		}
		code := status(n)
		if code/100 == 2 {
			var as []events.PostableAlert
			if err := json.Unmarshal(body, &as); err != nil {
				t.Errorf("bad body %s: %v", body, err)
			}
			r.got <- as
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *amReceiver) next(t *testing.T) []events.PostableAlert {
	t.Helper()
	select {
	case as := <-r.got:
		return as
	case <-time.After(waitTimeout):
		t.Fatal("no alerts received")
		return nil
	}
}

func (r *amReceiver) none(t *testing.T) {
	t.Helper()
	select {
	case as := <-r.got:
		t.Fatalf("unexpected alerts %+v", as)
	default:
	}
}

type amFixture struct {
	am  *events.Alertmanager
	clk *clock.Fake
	log *syncio.Writer
}

func newAM(t *testing.T, src events.PeerSource, urls []string, mod func(*events.AlertmanagerConfig)) *amFixture {
	t.Helper()
	f := &amFixture{clk: clock.NewFake(t0.Add(time.Hour)), log: &syncio.Writer{}}
	cfg := events.DefaultAlertmanagerConfig(urls...)
	cfg.Labels = map[string]string{"cluster": "prod"}
	cfg.MonitorID = "mon-a"
	cfg.ExternalURL = "http://mon-a:8080"
	cfg.Header = http.Header{"Authorization": {"Bearer s3cret"}}
	cfg.InitialBackoff, cfg.MaxBackoff = 5*time.Millisecond, 20*time.Millisecond
	cfg.Clock = f.clk
	cfg.Logger = newLogger(f.log)
	if mod != nil {
		mod(&cfg)
	}
	am, err := events.NewAlertmanager(src, cfg)
	if err != nil {
		t.Fatalf("NewAlertmanager: %v", err)
	}
	f.am = am
	return f
}

// start runs the sink and waits until its loop listens to the clock.
func (f *amFixture) start(t *testing.T) (stop func()) {
	t.Helper()
	stop = run(t, "alertmanager", f.am.Run)
	f.clk.WaitTickers(1)
	return stop
}

// firstSync advances the clock to the sink's first check of its
// monitor's readiness.
func (f *amFixture) firstSync() { f.clk.Advance(100 * time.Millisecond) }

func TestAlertmanagerConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*events.AlertmanagerConfig)
		want string
	}{
		{"no urls", func(c *events.AlertmanagerConfig) { c.URLs = nil }, "URLs needs at least one"},
		{"bad url", func(c *events.AlertmanagerConfig) { c.URLs = []string{"am:9093"} }, "URLs"},
		{"token stays out", func(c *events.AlertmanagerConfig) { c.URLs = []string{"ftp://u:tok@am/x?k=tok"} }, `URLs[0]: "ftp://am"`},
		{"twice", func(c *events.AlertmanagerConfig) { c.URLs = []string{"http://a:9093", "http://a:9093"} }, `URLs[1] "http://a:9093" is listed twice`},
		{"query", func(c *events.AlertmanagerConfig) { c.URLs = []string{"http://a:9093/?token=tok"} }, `URLs[0]: "http://a:9093": a query or fragment (not shown)`},
		{"fragment", func(c *events.AlertmanagerConfig) { c.URLs = []string{"http://a:9093/am#tok"} }, `URLs[0]: "http://a:9093": a query or fragment`},
		{"label name", func(c *events.AlertmanagerConfig) { c.Labels = map[string]string{"1x": "y"} }, `Labels: "1x" is not a label name`},
		{"reserved label", func(c *events.AlertmanagerConfig) { c.Labels = map[string]string{"peer": "y"} }, `Labels: "peer" is set by hbmesh`},
		{"dunder label", func(c *events.AlertmanagerConfig) { c.Labels = map[string]string{"__x": "y"} }, `Labels: "__x"`},
		{"empty value", func(c *events.AlertmanagerConfig) { c.Labels = map[string]string{"team": ""} }, `Labels: team=""`},
		{"resend", func(c *events.AlertmanagerConfig) { c.ResendInterval = time.Millisecond }, "ResendInterval 1ms"},
		{"max alerts", func(c *events.AlertmanagerConfig) { c.MaxAlerts = -1 }, "MaxAlerts -1"},
		{"header", func(c *events.AlertmanagerConfig) { c.Header = http.Header{"Authorization: Bearer tok": {"="}} }, `Header: a header name is not an HTTP field name`},
		{"external", func(c *events.AlertmanagerConfig) { c.ExternalURL = "mon-a:8080" }, "ExternalURL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := events.DefaultAlertmanagerConfig("http://127.0.0.1:9093")
			tc.mod(&cfg)
			err := cfg.Validate()
			if !errors.Is(err, cfgerr.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig naming %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "tok") {
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}
	if cfg := events.DefaultAlertmanagerConfig("http://127.0.0.1:9093"); cfg.Validate() != nil {
		t.Fatalf("default config invalid: %v", cfg.Validate())
	}
}

// TestAlertmanagerAlertsURL: the API path joins the base URL's path,
// with or without a path prefix and slashes; a query would stay at the
// end (ValidateAlertmanagerURL refuses one).
func TestAlertmanagerAlertsURL(t *testing.T) {
	for base, want := range map[string]string{
		"http://am:9093":           "http://am:9093/api/v2/alerts",
		"http://am:9093/":          "http://am:9093/api/v2/alerts",
		"https://h/alertmanager":   "https://h/alertmanager/api/v2/alerts",
		"https://h/alertmanager//": "https://h/alertmanager/api/v2/alerts",
		"http://am:9093/p?x=1":     "http://am:9093/p/api/v2/alerts?x=1",
	} {
		if got := events.AlertmanagerAlertsURL(base); got != want {
			t.Errorf("AlertmanagerAlertsURL(%q) = %q, want %q", base, got, want)
		}
	}
	for _, ok := range []string{"http://am:9093", "https://u:p@h/alertmanager/"} {
		if err := events.ValidateAlertmanagerURL(ok); err != nil {
			t.Errorf("ValidateAlertmanagerURL(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"http://am:9093/?tok", "http://am:9093?", "http://am:9093/#tok", "http://am:9093#", "am:9093"} {
		if err := events.ValidateAlertmanagerURL(bad); err == nil || strings.Contains(err.Error(), "tok") {
			t.Errorf("ValidateAlertmanagerURL(%q) = %v, want an error without the query or fragment", bad, err)
		}
	}
}

// TestAlertmanagerLifecycle: a dead event posts the alert at once, the
// resend posts it again with endsAt moved on, and the peer's recovery
// resolves it with endsAt at the moment it recovered.
func TestAlertmanagerLifecycle(t *testing.T) {
	r := newAMReceiver(t, func(int64) int { return http.StatusOK })
	died := t0.Add(30 * time.Minute)
	src := newPeers(true)
	f := newAM(t, src, []string{r.URL + "/am/"}, func(c *events.AlertmanagerConfig) { c.ResendInterval = time.Minute })
	f.start(t)
	f.firstSync()
	// Nothing is dead: the first sync sends nothing.

	src.set(deadPeer("web-1", died))
	ev := lifecycle("web-1")[2]
	f.am.Handle(ev)
	f.am.Handle(lifecycle("web-1")[1]) // suspect: nothing
	as := r.next(t)
	if len(as) != 1 {
		t.Fatalf("got %d alerts, want 1: %+v", len(as), as)
	}
	a := as[0]
	wantLabels := map[string]string{"alertname": "HbmeshPeerDead", "peer": "web-1", "host": "web-1.example", "prefix": "hb", "cluster": "prod"}
	if !maps.Equal(a.Labels, wantLabels) {
		t.Errorf("labels %v, want %v", a.Labels, wantLabels)
	}
	now := f.clk.Now()
	if !a.StartsAt.Equal(died) || !a.EndsAt.Equal(now.Add(4*time.Minute)) || a.GeneratorURL != "http://mon-a:8080/?q=web-1" {
		t.Errorf("startsAt %v endsAt %v (now %v) generatorURL %q", a.StartsAt, a.EndsAt, now, a.GeneratorURL)
	}
	for _, want := range []string{"stopped beating (last beat " + died.Add(-4*time.Second).Format(time.RFC3339) + ")", "declared dead at " + died.Format(time.RFC3339), "last seq 7"} {
		if !strings.Contains(a.Annotations["description"], want) {
			t.Errorf("description %q lacks %q", a.Annotations["description"], want)
		}
	}
	if a.Annotations["summary"] != "hbmesh peer web-1 is dead" || a.Annotations["monitor"] != "mon-a" || a.Annotations["reason"] != "timeout" {
		t.Errorf("annotations %v", a.Annotations)
	}

	f.clk.Advance(time.Minute)
	re := r.next(t)
	if len(re) != 1 || !maps.Equal(re[0].Labels, wantLabels) || !re[0].StartsAt.Equal(died) || !re[0].EndsAt.Equal(now.Add(5*time.Minute)) {
		t.Fatalf("resend %+v", re)
	}

	back := f.clk.Now().Add(-10 * time.Second)
	alive := deadPeer("web-1", back)
	alive.State = monitor.StateAlive
	src.set(alive)
	f.am.Handle(lifecycle("web-1")[3])
	res := r.next(t)
	if len(res) != 1 || !maps.Equal(res[0].Labels, wantLabels) || !res[0].EndsAt.Equal(back) || !res[0].StartsAt.Equal(died) ||
		res[0].Annotations["summary"] != "hbmesh peer web-1 is no longer dead" {
		t.Fatalf("resolved %+v", res)
	}
	f.clk.Advance(time.Minute) // a resend with nothing dead sends nothing
	eventually(t, "3 alerts sent", func() bool { return f.am.Stats().Sent == 3 })
	r.none(t)
	if st := f.am.Stats(); st.Failed+st.Dropped+st.Retries != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestAlertmanagerRestoredDeadPeersFire: a monitor restarted with restart
// memory emits no event for the dead peers it restored; the first sync,
// once it is ready, fires them.
func TestAlertmanagerRestoredDeadPeersFire(t *testing.T) {
	r := newAMReceiver(t, func(int64) int { return http.StatusOK })
	src := newPeers(false, deadPeer("db-1", t0), deadPeer("db-2", t0.Add(time.Second)))
	f := newAM(t, src, []string{r.URL + "/am"}, nil)
	f.start(t)
	f.firstSync()
	f.firstSync() // not ready: nothing yet
	src.setReady()
	f.firstSync()
	as := r.next(t)
	r.none(t)
	if len(as) != 2 || as[0].Labels["peer"] == as[1].Labels["peer"] {
		t.Fatalf("alerts %+v", as)
	}
	for _, a := range as {
		if a.StartsAt.After(t0.Add(time.Second)) || !a.EndsAt.After(f.clk.Now()) {
			t.Errorf("alert %+v", a)
		}
	}
	r.none(t)
}

// TestAlertmanagerRecoveryResolvesWhatAnotherProcessFired: a monitor
// restarted with restart memory may see a dead peer come back before its
// first sync fired it again. The alert its previous run kept firing must
// still be resolved now, not left to expire at its endsAt minutes later.
func TestAlertmanagerRecoveryResolvesWhatAnotherProcessFired(t *testing.T) {
	r := newAMReceiver(t, func(int64) int { return http.StatusOK })
	src := newPeers(false, deadPeer("db-1", t0))
	f := newAM(t, src, []string{r.URL + "/am"}, nil)
	f.start(t)
	back := f.clk.Now()
	alive := deadPeer("db-1", back)
	alive.State = monitor.StateAlive
	src.set(alive)
	f.am.Handle(lifecycle("db-1")[3])
	as := r.next(t)
	if len(as) != 1 || as[0].Labels["peer"] != "db-1" || !as[0].EndsAt.Equal(back) || as[0].StartsAt.After(back) ||
		as[0].Annotations["summary"] != "hbmesh peer db-1 is no longer dead" {
		t.Fatalf("alerts %+v, want db-1 resolved at %v", as, back)
	}
	src.setReady()
	f.firstSync()
	f.clk.Advance(time.Minute)
	eventually(t, "nothing more to send", func() bool { return f.am.Stats().Sent == 1 })
	r.none(t)
}

// TestAlertmanagerNeverReady: a monitor that is not ready from its start
// (its self-check failing, say) still has its dead peers re-sent, once a
// resend interval has passed.
func TestAlertmanagerNeverReady(t *testing.T) {
	r := newAMReceiver(t, func(int64) int { return http.StatusOK })
	src := newPeers(false, deadPeer("db-1", t0))
	f := newAM(t, src, []string{r.URL + "/am"}, func(c *events.AlertmanagerConfig) { c.ResendInterval = time.Second })
	f.start(t)
	for range 9 {
		f.firstSync()
	}
	r.none(t)
	f.clk.Advance(time.Second) // past one resend interval since the start
	if as := r.next(t); len(as) != 1 || as[0].Labels["peer"] != "db-1" {
		t.Fatalf("alerts %+v", as)
	}
}

// TestAlertmanagerForgottenPeerResolves: a dead peer the monitor forgets
// (its retention passed) produces no event; the next sync resolves it.
func TestAlertmanagerForgottenPeerResolves(t *testing.T) {
	r := newAMReceiver(t, func(int64) int { return http.StatusOK })
	src := newPeers(true, deadPeer("db-1", t0))
	f := newAM(t, src, []string{r.URL + "/am"}, func(c *events.AlertmanagerConfig) { c.ResendInterval = time.Second })
	f.start(t)
	f.firstSync()
	if as := r.next(t); len(as) != 1 || !as[0].EndsAt.After(f.clk.Now()) {
		t.Fatalf("alerts %+v", as)
	}
	src.forget("db-1")
	f.clk.Advance(time.Second)
	as := r.next(t)
	if len(as) != 1 || !as[0].EndsAt.Equal(f.clk.Now()) || !strings.Contains(as[0].Annotations["description"], "no longer known") {
		t.Fatalf("alerts %+v at %v", as, f.clk.Now())
	}
}

// TestAlertmanagerMaxAlerts: past MaxAlerts, the peers already alerted on
// keep their alerts across resends (no swapping), the rest raise nothing
// and are logged, and one of them fires once a slot frees up.
func TestAlertmanagerMaxAlerts(t *testing.T) {
	r := newAMReceiver(t, func(int64) int { return http.StatusOK })
	// z-1 dies first and is alerted on by its event; a-1 and b-1 die
	// later, and TopPeers lists them before z-1.
	src := newPeers(true, deadPeer("z-1", t0))
	f := newAM(t, src, []string{r.URL + "/am"}, func(c *events.AlertmanagerConfig) { c.MaxAlerts = 2; c.ResendInterval = time.Second })
	f.start(t)
	f.firstSync()
	if as := r.next(t); len(as) != 1 || as[0].Labels["peer"] != "z-1" {
		t.Fatalf("alerts %+v", as)
	}
	src.set(deadPeer("a-1", t0.Add(time.Minute)))
	src.set(deadPeer("b-1", t0.Add(time.Minute)))
	f.am.Handle(lifecycle("a-1")[2])
	if as := r.next(t); len(as) != 1 || as[0].Labels["peer"] != "a-1" {
		t.Fatalf("alerts %+v", as)
	}
	f.am.Handle(lifecycle("b-1")[2]) // over the cap
	for range 2 {
		f.clk.Advance(time.Second)
		as := r.next(t)
		got := map[string]bool{}
		for _, a := range as {
			got[a.Labels["peer"]] = true
		}
		if len(as) != 2 || !got["z-1"] || !got["a-1"] {
			t.Fatalf("resend %+v, want z-1 and a-1 only", as)
		}
	}
	if !strings.Contains(f.log.String(), "dead peers beyond MaxAlerts raise no alert") {
		t.Errorf("overflow not logged:\n%s", f.log.String())
	}
	alive := deadPeer("z-1", f.clk.Now())
	alive.State = monitor.StateAlive
	src.set(alive)
	f.am.Handle(lifecycle("z-1")[3])
	if as := r.next(t); len(as) != 1 || as[0].Labels["peer"] != "z-1" || as[0].EndsAt.After(f.clk.Now()) {
		t.Fatalf("resolved %+v", as)
	}
	f.clk.Advance(time.Second)
	as := r.next(t)
	got := map[string]bool{}
	for _, a := range as {
		got[a.Labels["peer"]] = true
	}
	if len(as) != 2 || !got["a-1"] || !got["b-1"] {
		t.Fatalf("resend after a slot freed %+v", as)
	}
}

// TestAlertmanagerOverflowLogsOnce: a mass death beyond MaxAlerts is
// one warning until the next resend says it again, not one per dead peer.
func TestAlertmanagerOverflowLogsOnce(t *testing.T) {
	r := newAMReceiver(t, func(int64) int { return http.StatusOK })
	src := newPeers(true, deadPeer("a-0", t0))
	f := newAM(t, src, []string{r.URL + "/am"}, func(c *events.AlertmanagerConfig) { c.MaxAlerts = 1; c.ResendInterval = time.Hour })
	f.start(t)
	f.firstSync()
	if as := r.next(t); len(as) != 1 || as[0].Labels["peer"] != "a-0" {
		t.Fatalf("alerts %+v", as)
	}
	for i := 1; i <= 100; i++ {
		id := fmt.Sprintf("b-%d", i)
		src.set(deadPeer(id, t0.Add(time.Minute)))
		f.am.Handle(lifecycle(id)[2])
	}
	// a-0 back: its resolution is posted after every death above was
	// looked at, in order.
	alive := deadPeer("a-0", f.clk.Now())
	alive.State = monitor.StateAlive
	src.set(alive)
	f.am.Handle(lifecycle("a-0")[3])
	if as := r.next(t); len(as) != 1 || as[0].Labels["peer"] != "a-0" || as[0].EndsAt.After(f.clk.Now()) {
		t.Fatalf("resolved %+v", as)
	}
	if n := strings.Count(f.log.String(), "dead peers beyond MaxAlerts raise no alert"); n != 1 {
		t.Fatalf("the overflow was logged %d times, want once:\n%s", n, f.log.String())
	}
}

// TestAlertmanagerOneDownAnotherUp: each Alertmanager has its own queue:
// one that refuses everything costs its own alerts (retried, then counted
// as failed and logged), never the other's.
func TestAlertmanagerOneDownAnotherUp(t *testing.T) {
	good := newAMReceiver(t, func(int64) int { return http.StatusOK })
	down := newAMReceiver(t, func(int64) int { return http.StatusServiceUnavailable })
	src := newPeers(true, deadPeer("web-1", t0))
	f := newAM(t, src, []string{down.URL + "/am", good.URL + "/am"}, func(c *events.AlertmanagerConfig) { c.MaxRetries = 2 })
	f.start(t)
	f.am.Handle(lifecycle("web-1")[2])
	if as := good.next(t); len(as) != 1 {
		t.Fatalf("alerts %+v", as)
	}
	eventually(t, "the post to the refusing Alertmanager to fail", func() bool { return f.am.Stats().Failed == 1 })
	if st := f.am.Stats(); st.Sent != 1 || st.Retries != 2 || down.calls.Load() != 3 {
		t.Fatalf("stats %+v after %d calls to the refusing one", st, down.calls.Load())
	}
	logs := f.log.String()
	if !strings.Contains(logs, "post not delivered") || !strings.Contains(logs, "503") {
		t.Errorf("failure not logged:\n%s", logs)
	}
	if strings.Contains(logs, "s3cret") || strings.Contains(logs, "/am") {
		t.Errorf("logs show a header value or a URL path:\n%s", logs)
	}
}

// TestAlertmanagerOutageCoalesces: while an Alertmanager refuses posts,
// each resend takes the place of the peer's alert waiting for it, the
// one it replaces counted as failed, instead of queueing behind it; a
// recovery during the outage takes the place of the firing alert. Back,
// the Alertmanager gets one alert per peer: the dead one firing until 4
// intervals after it is posted (not after it was first queued, long
// past), the recovered one resolved.
func TestAlertmanagerOutageCoalesces(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	r := newAMReceiver(t, func(int64) int {
		if down.Load() {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	src := newPeers(true, deadPeer("a-1", t0), deadPeer("b-1", t0))
	f := newAM(t, src, []string{r.URL + "/am"}, func(c *events.AlertmanagerConfig) {
		c.ResendInterval, c.QueueSize, c.MaxRetries = time.Second, 2, 100
	})
	f.start(t)
	f.firstSync()
	for i := range 5 {
		calls := r.calls.Load()
		eventually(t, "a post to fail", func() bool { return r.calls.Load() > calls })
		f.clk.Advance(time.Second)
		eventually(t, "the resend to replace both alerts", func() bool { return f.am.Stats().Failed == uint64(2*(i+1)) })
	}
	calls := r.calls.Load()
	eventually(t, "the last resend's post", func() bool { return r.calls.Load() > calls })
	back := f.clk.Now().Add(-time.Millisecond)
	alive := deadPeer("b-1", back)
	alive.State = monitor.StateAlive
	src.set(alive)
	f.am.Handle(lifecycle("b-1")[3])
	eventually(t, "the recovery to replace b-1's alert", func() bool { return f.am.Stats().Failed == 11 })
	down.Store(false)

	got := map[string][]events.PostableAlert{}
	for len(got["a-1"])+len(got["b-1"]) < 2 {
		for _, a := range r.next(t) {
			got[a.Labels["peer"]] = append(got[a.Labels["peer"]], a)
		}
	}
	if a := got["a-1"]; len(a) != 1 || !a[0].EndsAt.Equal(f.clk.Now().Add(4*time.Second)) || !a[0].StartsAt.Equal(t0) {
		t.Errorf("a-1: %+v, want one alert firing until %v", a, f.clk.Now().Add(4*time.Second))
	}
	if b := got["b-1"]; len(b) != 1 || !b[0].EndsAt.Equal(back) {
		t.Errorf("b-1: %+v, want one alert resolved at %v", b, back)
	}
	eventually(t, "both sent", func() bool { return f.am.Stats().Sent == 2 })
	r.none(t)
	if st := f.am.Stats(); st.Dropped != 0 || st.Failed != 11 {
		t.Errorf("stats %+v, want 11 failed (replaced after a failed post) and none dropped", st)
	}
}

// TestAlertmanagerHangingNeverBlocksHandle: against an Alertmanager that
// never answers, Handle stays fast and drops what its queue cannot hold.
func TestAlertmanagerHangingNeverBlocksHandle(t *testing.T) {
	url, arrived := hangingServer(t)
	src := newPeers(true, deadPeer("x", t0))
	f := newAM(t, src, []string{url}, func(c *events.AlertmanagerConfig) {
		c.QueueSize, c.Timeout, c.DrainTimeout = 2, time.Minute, 50*time.Millisecond
	})
	stop := f.start(t)
	f.am.Handle(lifecycle("x")[2])
	<-arrived // the post is stuck
	const n = 1000
	start := time.Now()
	for range n {
		f.am.Handle(lifecycle("x")[2])
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("%d Handle calls took %s against a hanging Alertmanager", n, took)
	}
	eventually(t, "drops", func() bool { return f.am.Stats().Dropped > 0 })
	stop() // the drain time passes
	if st := f.am.Stats(); st.Failed != 1 {
		t.Fatalf("after shutdown stats %+v, want the stuck post failed", st)
	}
}

// TestAlertmanagerRestartMemory: a real monitor restored from restart
// memory with a dead peer emits no event for it, yet its sink fires the
// peer's alert, with the death's original start.
func TestAlertmanagerRestartMemory(t *testing.T) {
	r := newAMReceiver(t, func(int64) int { return http.StatusOK })
	srv := natstest.Start(t)
	died := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	restored := deadPeer("db-1", died)
	m, _ := meshtest.StartMonitor(t, srv.ClientURL(), "mon-a", func(c *monitor.Config) {
		c.Restore = []monitor.PeerInfo{restored}
	})
	cfg := events.DefaultAlertmanagerConfig(r.URL + "/am")
	cfg.Header = http.Header{"Authorization": {"Bearer s3cret"}}
	a, err := events.NewAlertmanager(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	run(t, "alertmanager", a.Run)
	as := r.next(t)
	// The monitor keeps times as offsets from its own start: the restored
	// death may be off by a few nanoseconds.
	if len(as) != 1 || as[0].Labels["peer"] != "db-1" || as[0].StartsAt.Sub(died).Abs() > time.Millisecond || !as[0].EndsAt.After(time.Now()) {
		t.Fatalf("alerts %+v", as)
	}
}
