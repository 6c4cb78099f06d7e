package httpapi_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/hbmesh/hbmesh/internal/cfgerr"
	"github.com/hbmesh/hbmesh/internal/events"
	"github.com/hbmesh/hbmesh/internal/httpapi"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/monitor"
)

var metricNames = []string{
	"hbmesh_peers", "hbmesh_transitions_total", "hbmesh_beats_received_total", "hbmesh_beats_rejected_total",
	"hbmesh_probes_sent_total", "hbmesh_probes_failed_total", "hbmesh_probes_answered_total",
	"hbmesh_probe_rtt_seconds_bucket", "hbmesh_probe_rtt_seconds_sum", "hbmesh_probe_rtt_seconds_count",
	"hbmesh_detection_overshoot_seconds_bucket", "hbmesh_monitor_connected", "hbmesh_monitor_impaired",
	"hbmesh_monitor_stalls_total", "hbmesh_monitor_stalled_seconds_total", "hbmesh_monitor_outages_total",
	"hbmesh_beats_dropped_total", "hbmesh_peers_evicted_total", "hbmesh_peers_forgotten_total", "hbmesh_restarts_total",
	"hbmesh_boot_conflicts_total", "hbmesh_build_info", "hbmesh_dead_peers_unlisted", "go_goroutines", "process_cpu_seconds_total",
	"hbmesh_fast_path", "hbmesh_disconnect_advisories_total", "hbmesh_fast_path_checks_total",
}

// scrape returns the sample lines of /metrics whose name starts with
// prefix.
func scrape(t *testing.T, url, prefix string) []string {
	t.Helper()
	resp, body := get(t, url+"/metrics")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, body)
	}
	var out []string
	for line := range strings.SplitSeq(body, "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return out
}

func TestMetricsNames(t *testing.T) {
	_, ts := newServer(t, mixedFleet())
	all := strings.Join(scrape(t, ts.URL, ""), "\n")
	for _, n := range metricNames {
		if !strings.Contains(all, "\n"+n) {
			t.Errorf("missing %s", n)
		}
	}
	for _, r := range monitor.RejectReasons() {
		if !strings.Contains(all, `hbmesh_beats_rejected_total{reason="`+r+`"}`) {
			t.Errorf("missing reason %s", r)
		}
	}
	for _, r := range monitor.AdvisoryResults() {
		if !strings.Contains(all, `hbmesh_disconnect_advisories_total{result="`+r+`"}`) {
			t.Errorf("missing advisory result %s", r)
		}
	}
	for _, o := range monitor.CheckOutcomes() {
		if !strings.Contains(all, `hbmesh_fast_path_checks_total{outcome="`+o+`"}`) {
			t.Errorf("missing check outcome %s", o)
		}
	}
	for _, want := range []string{
		`hbmesh_fast_path 1`,
		`hbmesh_fast_path_checks_total{outcome="dead"} 4`,
		`hbmesh_disconnect_advisories_total{result="checked"} 5`,
		`hbmesh_beats_rejected_total{reason="replay"} 3`,
		`hbmesh_peers{state="dead"} 2`,
		`hbmesh_monitor_connected 1`,
		`hbmesh_beats_dropped_total 7`,
		`hbmesh_build_info{goversion="go`,
		`monitor="mon-1",version="v1.2.3"} 1`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("missing %q", want)
		}
	}
	if strings.Contains(all, "hbmesh_peer_up") {
		t.Error("per-peer series without PerPeerMetrics")
	}
}

func TestMetricsCardinality(t *testing.T) {
	_, small := newServer(t, newFake(1))
	_, big := newServer(t, newFake(1000))
	if a, b := len(scrape(t, small.URL, "hbmesh_")), len(scrape(t, big.URL, "hbmesh_")); a != b {
		t.Errorf("1 peer: %d series, 1000 peers: %d series", a, b)
	}

	_, capped := newServer(t, newFake(1000, monitor.PeerInfo{ID: "zz-dead", State: monitor.StateDead}),
		func(c *httpapi.Config) { c.PerPeerMetrics, c.PerPeerMetricsCap = true, 10 })
	up := scrape(t, capped.URL, "hbmesh_peer_up{")
	if len(up) != 10 {
		t.Errorf("%d hbmesh_peer_up series, want 10", len(up))
	}
	// The exposition is sorted by label; the cap must keep the worst peer.
	if !strings.Contains(strings.Join(up, "\n"), `hbmesh_peer_up{id="zz-dead"} 0`) {
		t.Errorf("dead peer left out of the capped series: %q", up)
	}
	if n := len(scrape(t, capped.URL, "hbmesh_peer_last_beat_age_seconds{")); n > 10 {
		t.Errorf("%d age series, want at most 10", n)
	}
	if tr := scrape(t, capped.URL, "hbmesh_peer_series_truncated "); len(tr) != 1 || tr[0] != "hbmesh_peer_series_truncated 1" {
		t.Errorf("truncated: %q", tr)
	}
	if age := scrape(t, capped.URL, `hbmesh_peer_last_beat_age_seconds{id="p0000"}`); len(age) != 1 || age[0] != `hbmesh_peer_last_beat_age_seconds{id="p0000"} 1` {
		t.Errorf("age: %q", age)
	}
}

func TestMetricsEventOutputs(t *testing.T) {
	// No outputs configured: no series, not even zeros.
	_, plain := newServer(t, newFake(1))
	if got := scrape(t, plain.URL, "hbmesh_event_outputs_total"); len(got) != 0 {
		t.Errorf("series without event outputs: %q", got)
	}

	// A real hook that fails, as in `monitor --on-event 'echo boom >&2; exit 3'`.
	cfg := events.DefaultExecConfig("echo boom >&2; exit 3")
	hook, err := events.NewExec(cfg)
	if err != nil {
		t.Fatal(err)
	}
	natstest.Run(t, "hook", hook.Run)
	webhook := events.Stats{Sent: 4, Failed: 1, Dropped: 2}
	_, ts := newServer(t, newFake(1), func(c *httpapi.Config) {
		c.EventOutputs = []httpapi.EventOutput{
			{Name: "exec", Stats: hook.Stats},
			{Name: "webhook", Stats: func() events.Stats { return webhook }},
		}
	})
	hook.Handle(monitor.Event{ID: "web-1", State: monitor.StateDead, Prev: monitor.StateSuspect, Time: t0})
	// Nothing signals a finished hook but its counters: poll them.
	natstest.Eventually(t, "the hook to fail", func() bool { return hook.Stats().Failed > 0 })
	got := strings.Join(scrape(t, ts.URL, "hbmesh_event_outputs_total{"), "\n")
	for _, want := range []string{
		`hbmesh_event_outputs_total{output="exec",result="failed"} 1`,
		`hbmesh_event_outputs_total{output="exec",result="ok"} 0`,
		`hbmesh_event_outputs_total{output="exec",result="dropped"} 0`,
		`hbmesh_event_outputs_total{output="webhook",result="ok"} 4`,
		`hbmesh_event_outputs_total{output="webhook",result="failed"} 1`,
		`hbmesh_event_outputs_total{output="webhook",result="dropped"} 2`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if n := len(strings.Split(got, "\n")); n != 6 {
		t.Errorf("%d series, want 6 (3 results × 2 outputs):\n%s", n, got)
	}
}

func TestEventOutputsValidate(t *testing.T) {
	stats := func() events.Stats { return events.Stats{} }
	for _, tc := range []struct {
		name    string
		outputs []httpapi.EventOutput
		want    string
	}{
		{"no name", []httpapi.EventOutput{{Stats: stats}}, `EventOutputs[0].Name "" must be set and unique`},
		{"twice", []httpapi.EventOutput{{"exec", stats}, {"exec", stats}}, `EventOutputs[1].Name "exec" must be set and unique`},
		{"no stats", []httpapi.EventOutput{{Name: "exec"}}, `EventOutputs[0].Stats must be set`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := httpapi.DefaultConfig()
			cfg.Source, cfg.EventOutputs = newFake(0), tc.outputs
			err := cfg.Validate()
			if !errors.Is(err, cfgerr.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate: %v, want %q", err, tc.want)
			}
		})
	}
}
