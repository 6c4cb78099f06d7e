package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/internal/natstest"
)

// The operator's repro: a failing --on-event hook is logged, and counted
// on /metrics next to the NATS publisher; the outputs not configured
// (webhook, stream) have no series.
func TestMonitorEventOutputMetrics(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.ClientURL()
	mon := start(t, "monitor", "-s", url, "--id", "m1", "--http", "127.0.0.1:0", "--on-event", "echo boom >&2; exit 3")
	base := "http://" + logValue(t, mon, "http server listening", "addr")
	natstest.WaitInterest(t, srv, "hb.anything")
	start(t, "node", "-s", url, "--id", "web-1", "--interval", "100ms")

	logValue(t, mon, "event hook failed", "stderr")
	var body string
	waitFor(t, 10*time.Second, "the failed hook on /metrics", func() bool {
		var code int
		code, body = httpGet(t, base+"/metrics")
		return code == http.StatusOK && strings.Contains(body, `hbmesh_event_outputs_total{output="exec",result="failed"} 1`) &&
			strings.Contains(body, `hbmesh_event_outputs_total{output="nats",result="ok"} 1`)
	})
	for _, want := range []string{
		`hbmesh_event_outputs_total{output="exec",result="ok"} 0`,
		`hbmesh_event_outputs_total{output="exec",result="dropped"} 0`,
		`hbmesh_event_outputs_total{output="nats",result="failed"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, absent := range []string{`output="webhook"`, `output="stream"`} {
		if strings.Contains(body, absent) {
			t.Errorf("/metrics has %s series, but it is not configured", absent)
		}
	}
	if code := mon.stop(t); code != 0 {
		t.Fatalf("monitor exit %d; stderr:\n%s", code, mon.stderr)
	}
}
