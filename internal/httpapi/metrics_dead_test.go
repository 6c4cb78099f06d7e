package httpapi_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/internal/events"
	"github.com/hbmesh/hbmesh/internal/httpapi"
	"github.com/hbmesh/hbmesh/internal/meshtest"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/internal/promtest"
	"github.com/hbmesh/hbmesh/monitor"
)

// TestMetricsDeadPeers: only dead peers get a
// hbmesh_dead_peer_timestamp_seconds series (never left ones), valued at
// their death; past the cap the rest are counted as unlisted, and a host
// the exposition cannot carry costs its peer the series, not the scrape.
func TestMetricsDeadPeers(t *testing.T) {
	died := t0.Add(-90 * time.Second)
	fleet := newFake(3,
		monitor.PeerInfo{ID: "web-10", Host: "h10", State: monitor.StateDead, Since: died},
		monitor.PeerInfo{ID: "web-2", Host: "h2", State: monitor.StateDead, Since: died.Add(time.Second)},
		monitor.PeerInfo{ID: "gone", Host: "hg", State: monitor.StateLeft, Since: died},
	)
	_, ts := newServer(t, fleet)
	got := scrape(t, ts.URL, "hbmesh_dead_peer")
	want := []string{
		`hbmesh_dead_peer_timestamp_seconds{host="h10",peer="web-10",prefix="hb"} ` + promFloat(died),
		`hbmesh_dead_peer_timestamp_seconds{host="h2",peer="web-2",prefix="hb"} ` + promFloat(died.Add(time.Second)),
		"hbmesh_dead_peers_unlisted 0",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	_, capped := newServer(t, fleet, func(c *httpapi.Config) { c.DeadPeerSeriesCap = 1 })
	got = scrape(t, capped.URL, "hbmesh_dead_peer")
	// The cap keeps the first by id in natural order: web-2.
	if len(got) != 2 || !strings.Contains(got[0], `peer="web-2"`) || got[1] != "hbmesh_dead_peers_unlisted 1" {
		t.Errorf("capped: %q", got)
	}

	bad := newFake(0, monitor.PeerInfo{ID: "x", Host: "\xff", State: monitor.StateDead, Since: died})
	_, ts = newServer(t, bad)
	if got := scrape(t, ts.URL, "hbmesh_dead_peer"); len(got) != 1 || got[0] != "hbmesh_dead_peers_unlisted 1" {
		t.Errorf("invalid host: %q", got)
	}
}

// promFloat is t as a Unix timestamp in the exposition's float format.
func promFloat(t time.Time) string { return strconv.FormatFloat(float64(t.Unix()), 'g', -1, 64) }

// TestMetricsPassPromtool scrapes a live monitor, on a real NATS server,
// with a dead peer, per-peer series and an event output, and runs the
// scrape through `promtool check metrics`, the linter of the exposition
// format and of Prometheus's naming conventions.
func TestMetricsPassPromtool(t *testing.T) {
	srv := natstest.Start(t)
	hook, err := events.NewExec(events.DefaultExecConfig("true"))
	if err != nil {
		t.Fatal(err)
	}
	natstest.Run(t, "hook", hook.Run)
	m, _ := meshtest.StartMonitor(t, srv.ClientURL(), "mon-a", func(c *monitor.Config) { c.OnEvent = hook.Handle })
	kill := meshtest.StartNode(t, srv.ClientURL(), "web-1", 100*time.Millisecond)
	meshtest.StartNode(t, srv.ClientURL(), "web-2", 100*time.Millisecond)
	natstest.Eventually(t, "two peers", func() bool { p, ok := m.Peer("web-2"); return ok && p.State == monitor.StateAlive })
	kill()
	natstest.Eventually(t, "web-1 dead", func() bool { p, _ := m.Peer("web-1"); return p.State == monitor.StateDead })

	cfg := httpapi.DefaultConfig()
	cfg.Source, cfg.PerPeerMetrics = m, true
	cfg.EventOutputs = []httpapi.EventOutput{{Name: "exec", Stats: hook.Stats}}
	s, err := httpapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `hbmesh_dead_peer_timestamp_seconds{host="web-1.example",peer="web-1",prefix="hb"}`) {
		t.Fatalf("no dead-peer series for web-1 in:\n%s", body)
	}
	out, ok := promtest.Promtool(t, body, "check", "metrics")
	if !ok || strings.TrimSpace(out) != "" {
		t.Fatalf("promtool check metrics (exit 0: %v):\n%s", ok, out)
	}
}

// TestServeMetrics: the metrics listener serves /metrics, /livez and
// /readyz and nothing of the dashboard or the API, with the same headers
// and read-only rule as the main one.
func TestServeMetrics(t *testing.T) {
	s, _ := newServer(t, mixedFleet())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	natstest.Run(t, "ServeMetrics", func(ctx context.Context) error { return s.ServeMetrics(ctx, ln) })
	base := "http://" + ln.Addr().String()
	for path, want := range map[string]int{
		"/metrics": http.StatusOK, "/livez": http.StatusOK, "/readyz": http.StatusOK,
		"/": http.StatusNotFound, "/api/peers": http.StatusNotFound, "/api/events": http.StatusNotFound, "/app.js": http.StatusNotFound,
	} {
		resp, body := get(t, base+path)
		if resp.StatusCode != want {
			t.Errorf("%s: %d %s, want %d", path, resp.StatusCode, body, want)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no security headers", path)
		}
	}
	if resp, _ := do(t, http.MethodPost, base+"/metrics", nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %d", resp.StatusCode)
	}
	if got := scrape(t, base, "hbmesh_peers{"); len(got) != 4 {
		t.Errorf("scrape: %q", got)
	}
}
