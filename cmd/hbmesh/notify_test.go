package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/internal/meshtest"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/internal/promtest"
)

// TestNotifyMetrics: `hbmesh notify` with HBMESH_METRICS_ADDR is ready
// once its consumer is bound, and its /metrics, which promtool accepts,
// counts a killed node's death, delivered on the second try, and the
// node's first beat.
func TestNotifyMetrics(t *testing.T) {
	srv := natstest.Start(t, func(c *embedded.Config) { c.JetStream, c.StoreDir = true, t.TempDir() })
	url := srv.ClientURL()
	mon := start(t, "monitor", "-s", url, "--id", "m1", "--no-memory", "--events-stream", "EV")
	logValue(t, mon, "event stream", "stream")
	w := startEnv(t, map[string]string{"HBMESH_METRICS_ADDR": "127.0.0.1:0"}, "notify", "-s", url, "--stream", "EV",
		"--on-event", `[ "$HBMESH_STATE" != dead ] || [ "$HBMESH_DELIVERY" -ge 2 ]`, "--on-event-states", "alive,dead")
	base := "http://" + logValue(t, w, "metrics server listening", "addr")
	waitFor(t, 10*time.Second, "/readyz 200", func() bool {
		code, _ := httpGet(t, base+"/readyz")
		return code == http.StatusOK
	})
	if !strings.Contains(w.stderr.String(), `msg="notify started"`) {
		t.Errorf("ready before the consumers are bound:\n%s", w.stderr)
	}

	natstest.WaitInterest(t, srv, "hb.web-1")
	kill := meshtest.StartNode(t, url, "web-1", 100*time.Millisecond)
	var body string
	waitFor(t, 10*time.Second, "the first beat's event", func() bool {
		_, body = httpGet(t, base+"/metrics")
		return strings.Contains(body, `hbmesh_notify_events_total{output="exec",result="ok"} 1`)
	})
	kill()
	waitFor(t, 20*time.Second, "the death delivered on the second try", func() bool {
		_, body = httpGet(t, base+"/metrics")
		return strings.Contains(body, `hbmesh_notify_events_total{output="exec",result="ok"} 2`)
	})
	for _, want := range []string{
		`hbmesh_notify_retries_total{output="exec"} 1`,
		`hbmesh_notify_events_total{output="exec",result="failed"} 0`,
		`hbmesh_notify_events_total{output="exec",result="dropped"} 0`,
		`hbmesh_notify_events_total{output="exec",result="duplicate"} 0`,
		`consumer="hbmesh_notify",goversion="go`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, `output="webhook"`) || strings.Contains(body, "hbmesh_event_outputs_total") || strings.Contains(body, "hbmesh_build_info") {
		t.Errorf("/metrics has series of an output not configured, or of the monitor:\n%s", body)
	}
	if out, ok := promtest.Promtool(t, []byte(body), "check", "metrics"); !ok || strings.TrimSpace(out) != "" {
		t.Errorf("promtool check metrics (exit 0: %v):\n%s", ok, out)
	}
	if code := w.stop(t); code != exitOK {
		t.Fatalf("notify exit %d; stderr:\n%s", code, w.stderr)
	}
	if !strings.Contains(w.stderr.String(), "metrics server stopped") {
		t.Errorf("the metrics server did not stop:\n%s", w.stderr)
	}
}
