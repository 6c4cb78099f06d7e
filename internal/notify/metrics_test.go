package notify_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/internal/httpapi"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/internal/notify"
	"github.com/hbmesh/hbmesh/internal/promtest"
)

// TestMetricsAndReadiness: /readyz says whether the consumers are bound,
// and /metrics counts what became of every event, per output: delivered,
// delivered after a retry, refused by the receiver, not an event, and a
// second monitor's report of a death the stream already had.
func TestMetricsAndReadiness(t *testing.T) {
	srv := startJS(t)
	url := srv.ClientURL()
	p := publisher(t, url, "mon-a")
	var posts atomic.Int64
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if posts.Add(1) == 1 {
			w.WriteHeader(http.StatusBadRequest) // refused: given up at once
		}
	}))
	t.Cleanup(rcv.Close)
	cfg := notify.DefaultConfig(stream)
	cfg.AckWait = time.Second
	cfg.InitialBackoff, cfg.MaxBackoff = 10*time.Millisecond, 50*time.Millisecond
	// The death's hook fails on its first delivery.
	cfg.Command = `[ "$HBMESH_STATE" != dead ] || [ "$HBMESH_DELIVERY" -ge 2 ]`
	cfg.WebhookURL = rcv.URL
	n, err := notify.New(natstest.Connect(t, url), cfg)
	if err != nil {
		t.Fatal(err)
	}
	m, err := httpapi.NewMetrics(httpapi.MetricsConfig{Collector: n.Collector("v1.2.3"), Ready: n.Ready})
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(m.Handler())
	t.Cleanup(web.Close)
	readyz := func() (int, string) {
		t.Helper()
		resp, err := http.Get(web.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	if code, body := readyz(); code != http.StatusServiceUnavailable || body != "notify: consumers not bound" {
		t.Errorf("/readyz before Run: %d %q", code, body)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	natstest.Eventually(t, "/readyz 200", func() bool { code, _ := readyz(); return code == http.StatusOK })

	js := jsFor(t, url)
	dead := deadEvent("web-1", 9)
	p.Handle(dead)
	again := deadEvent("web-1", 10) // another monitor's verdict on the same death
	publisher(t, url, "mon-b").Handle(again)
	natstest.Eventually(t, "both deaths stored", func() bool {
		s, err := js.Stream(context.Background(), stream)
		return err == nil && s.CachedInfo().State.Msgs == 2
	})
	if _, err := js.Publish(context.Background(), "hb.events.dead.junk", []byte("not an event")); err != nil {
		t.Fatal(err)
	}
	p.Handle(recovery("web-1", 11, dead.Time.Add(time.Minute)))
	for _, o := range []string{notify.OutputExec, notify.OutputWebhook} {
		waitConsumer(t, url, n.ConsumerName(o), 4)
	}

	resp, err := http.Get(web.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	got := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "hbmesh_") {
			got[line] = true
		}
	}
	want := []string{
		`hbmesh_notify_events_total{output="exec",result="ok"} 2`,
		`hbmesh_notify_events_total{output="exec",result="failed"} 0`,
		`hbmesh_notify_events_total{output="exec",result="dropped"} 1`,
		`hbmesh_notify_events_total{output="exec",result="duplicate"} 1`,
		`hbmesh_notify_retries_total{output="exec"} 1`,
		`hbmesh_notify_events_total{output="webhook",result="ok"} 1`,
		`hbmesh_notify_events_total{output="webhook",result="failed"} 1`,
		`hbmesh_notify_events_total{output="webhook",result="dropped"} 1`,
		`hbmesh_notify_events_total{output="webhook",result="duplicate"} 1`,
		`hbmesh_notify_retries_total{output="webhook"} 0`,
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("/metrics lacks %s", w)
		}
		delete(got, w)
	}
	var info string
	for line := range got {
		if strings.HasPrefix(line, "hbmesh_notify_build_info{") {
			info = line
			delete(got, line)
		}
	}
	if !strings.Contains(info, `consumer="hbmesh_notify"`) || !strings.Contains(info, `stream="`+stream+`"`) || !strings.Contains(info, `version="v1.2.3"`) || !strings.HasSuffix(info, "} 1") {
		t.Errorf("build info %q", info)
	}
	if len(got) != 0 {
		t.Errorf("other hbmesh series: %v", got)
	}
	if out, ok := promtest.Promtool(t, body, "check", "metrics"); !ok || strings.TrimSpace(out) != "" {
		t.Errorf("promtool check metrics (exit 0: %v):\n%s", ok, out)
	}

	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	done <- nil // for the cleanup
	if code, body := readyz(); code != http.StatusServiceUnavailable || body != "notify: stopped" {
		t.Errorf("/readyz after Run: %d %q", code, body)
	}
}
