package httpapi_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/internal/notify"
)

// TestAlertRules checks deploy/prometheus/hbmesh-alerts.yml against the
// metrics served here and by hbmesh notify: every hbmesh_ metric a rule
// names exists, and the
// rejected-beats rule leaves out probe_unsolicited, which OPERATIONS calls
// harmless. (deploy/prometheus runs promtool on the file; this reads it
// as text, to compare it with the metrics.)
func TestAlertRules(t *testing.T) {
	b, err := os.ReadFile("../../deploy/prometheus/hbmesh-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	exprs := map[string]string{} // alert -> expr
	var alert string
	block := "" // the indentation of a multi-line expr's lines, while in one
	for _, raw := range strings.Split(string(b), "\n") {
		line := strings.TrimSpace(raw)
		if block != "" {
			if strings.HasPrefix(raw, block) {
				exprs[alert] += " " + line
				continue
			}
			block = ""
		}
		if a, ok := strings.CutPrefix(line, "- alert: "); ok {
			alert = a
		}
		if e, ok := strings.CutPrefix(line, "expr: "); ok {
			exprs[alert] = e
			if e == "|" {
				exprs[alert] = ""
				block = raw[:strings.Index(raw, "expr:")] + "  "
			}
		}
	}
	if len(exprs) < 12 || exprs["HbmeshPeerDead"] == "" || exprs["HbmeshNotifyGivingUp"] == "" {
		t.Fatalf("read %d rules, HbmeshPeerDead %q: the parsing no longer fits the file", len(exprs), exprs["HbmeshPeerDead"])
	}
	known := map[string]bool{}
	for _, n := range metricNames {
		known[n] = true
	}
	// Exported only when an event output is configured, so not in
	// metricNames; TestMetricsEventOutputs scrapes it.
	known["hbmesh_event_outputs_total"] = true
	// Exported only while a peer is dead; TestMetricsDeadPeers scrapes it.
	known["hbmesh_dead_peer_timestamp_seconds"] = true
	for _, n := range notifyMetricNames(t) {
		known[n] = true
	}
	for a, e := range exprs {
		for _, m := range regexp.MustCompile(`hbmesh_[a-z_]+`).FindAllString(e, -1) {
			if !known[m] {
				t.Errorf("%s: unknown metric %s in %s", a, m, e)
			}
		}
	}
	e, ok := exprs["HbmeshBeatsRejected"]
	if !ok {
		t.Fatalf("no HbmeshBeatsRejected rule among %v", exprs)
	}
	if !strings.Contains(e, `hbmesh_beats_rejected_total{reason!="probe_unsolicited"}`) {
		t.Errorf("HbmeshBeatsRejected counts probe_unsolicited: %s", e)
	}
	doc, err := os.ReadFile("../../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), e) {
		t.Errorf("docs/OPERATIONS.md does not quote the rule as it is: %s", e)
	}
}

// notifyMetricNames returns the names hbmesh notify exports, gathered
// from a Notifier with an output.
func notifyMetricNames(t *testing.T) []string {
	t.Helper()
	srv := natstest.Start(t)
	cfg := notify.DefaultConfig("EV")
	cfg.Command = "true"
	n, err := notify.New(natstest.Connect(t, srv.ClientURL()), cfg)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(n.Collector("v1"))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	if len(names) < 3 {
		t.Fatalf("notify exports %v", names)
	}
	return names
}

// TestGrafanaDashboard checks deploy/grafana/hbmesh-dashboard.json: it is
// JSON, every panel queries the dashboard's data source variable, every
// hbmesh_ metric a query names exists (the monitor's or hbmesh notify's),
// and no two panels overlap on the grid. (Grafana is not a test dependency; this reads the model.)
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("../../deploy/grafana/hbmesh-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	type grid struct{ X, Y, W, H int }
	var dash struct {
		UID    string
		Panels []struct {
			ID         int
			Title      string
			Datasource struct{ UID string }
			GridPos    grid
			Targets    []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("no uid or no panels: %q, %d", dash.UID, len(dash.Panels))
	}
	known := map[string]bool{"hbmesh_event_outputs_total": true, "hbmesh_dead_peer_timestamp_seconds": true}
	for _, n := range metricNames {
		known[n] = true
	}
	for _, n := range notifyMetricNames(t) {
		known[n] = true
	}
	ids := map[int]bool{}
	cells := map[[2]int]string{}
	used := map[string]bool{}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Datasource.UID != "${datasource}" {
			t.Errorf("%s: data source %q, want the ${datasource} variable", p.Title, p.Datasource.UID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: no queries", p.Title)
		}
		for _, q := range p.Targets {
			ms := regexp.MustCompile(`hbmesh_[a-z_]+`).FindAllString(q.Expr, -1)
			if len(ms) == 0 {
				t.Errorf("%s: query names no hbmesh metric: %s", p.Title, q.Expr)
			}
			for _, m := range ms {
				used[m] = true
				if !known[m] {
					t.Errorf("%s: unknown metric %s in %s", p.Title, m, q.Expr)
				}
			}
		}
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X+g.W > 24 {
			t.Errorf("%s: grid position %+v is off the 24-column grid", p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := cells[[2]int{x, y}]; ok {
					t.Fatalf("panels %q and %q overlap at %d,%d", other, p.Title, x, y)
				}
				cells[[2]int{x, y}] = p.Title
			}
		}
	}
	// The signals an operator is paged for must be on the board.
	for _, m := range []string{"hbmesh_peers", "hbmesh_monitor_connected", "hbmesh_monitor_impaired", "hbmesh_beats_dropped_total", "hbmesh_beats_rejected_total",
		"hbmesh_dead_peer_timestamp_seconds", "hbmesh_fast_path_checks_total", "hbmesh_notify_events_total"} {
		if !used[m] {
			t.Errorf("no panel shows %s", m)
		}
	}
}
