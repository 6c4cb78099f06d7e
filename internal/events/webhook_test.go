package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/internal/cfgerr"
	"github.com/hbmesh/hbmesh/internal/events"
	"github.com/hbmesh/hbmesh/internal/syncio"
	"github.com/hbmesh/hbmesh/monitor"
)

// receiver is a real HTTP server recording the payloads it accepts.
type receiver struct {
	*httptest.Server
	calls atomic.Int64
	got   chan events.Payload
}

// newReceiver answers with status(call) for the call-th request (1-based).
func newReceiver(t *testing.T, status func(call int64) int) *receiver {
	t.Helper()
	r := &receiver{got: make(chan events.Payload, 64)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n := r.calls.Add(1)
		body, _ := io.ReadAll(req.Body)
		if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s with content type %q", req.Method, req.Header.Get("Content-Type"))
		}
		code := status(n)
		if code/100 == 2 {
			var p events.Payload
			if err := json.Unmarshal(body, &p); err != nil {
				t.Errorf("bad payload %s: %v", body, err)
			}
			r.got <- p
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) next(t *testing.T) events.Payload {
	t.Helper()
	select {
	case p := <-r.got:
		return p
	case <-time.After(waitTimeout):
		t.Fatal("no webhook received")
		return events.Payload{}
	}
}

func newWebhook(t *testing.T, url string, mod func(*events.WebhookConfig)) *events.Webhook {
	t.Helper()
	cfg := events.DefaultWebhookConfig(url)
	cfg.MonitorID = "mon-a"
	cfg.InitialBackoff = 5 * time.Millisecond
	cfg.MaxBackoff = 20 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	w, err := events.NewWebhook(cfg)
	if err != nil {
		t.Fatalf("NewWebhook: %v", err)
	}
	return w
}

func TestWebhookConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*events.WebhookConfig)
		want string
	}{
		{"url", func(c *events.WebhookConfig) { c.URL = "ftp://x" }, `URL: "ftp://x"`},
		{"empty url", func(c *events.WebhookConfig) { c.URL = "" }, `URL: ""`},
		{"backoff", func(c *events.WebhookConfig) { c.MaxBackoff = time.Millisecond }, "MaxBackoff 1ms"},
		{"queue", func(c *events.WebhookConfig) { c.QueueSize = 0 }, "QueueSize 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := events.DefaultWebhookConfig("http://127.0.0.1:9093/hook")
			tc.mod(&cfg)
			err := cfg.Validate()
			if !errors.Is(err, cfgerr.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig naming %q", err, tc.want)
			}
		})
	}
}

// TestAlertNamesTheReason: an alert about a peer convicted by the crash
// fast path says its connection was lost, one convicted by timeout says it
// stopped beating, each names the last beat the event carries, and each
// carries the reason as events name it.
func TestAlertNamesTheReason(t *testing.T) {
	for _, tc := range []struct {
		reason   monitor.Reason
		lastBeat time.Time
		want     string
	}{
		{monitor.ReasonTimeout, t0, "Peer web-1 (host \"web-1.example\") stopped beating (last beat 2025-03-01T12:00:00Z) and did not answer its probe; declared dead at 2025-03-01T12:00:02Z."},
		{monitor.ReasonDisconnected, t0, "Peer web-1 (host \"web-1.example\") lost its NATS connection (last beat 2025-03-01T12:00:00Z) and neither reconnected, beat nor answered its probe within its reconnect window; declared dead at 2025-03-01T12:00:02Z."},
		{monitor.ReasonTimeout, time.Time{}, "Peer web-1 (host \"web-1.example\") stopped beating (last beat unknown) and did not answer its probe"},
	} {
		ev := lifecycle("web-1")[2]
		ev.Reason, ev.LastBeat = tc.reason, tc.lastBeat
		a := events.EventAlert(&ev, ev.Time, time.Hour, "hb", nil, "", "")
		if d := a.Annotations["description"]; !strings.HasPrefix(d, tc.want) {
			t.Errorf("%s: description %q, want it to start %q", tc.reason, d, tc.want)
		}
		if a.Annotations["reason"] != string(tc.reason) {
			t.Errorf("%s: reason annotation %q", tc.reason, a.Annotations["reason"])
		}
	}
}

func TestWebhookFiringThenResolved(t *testing.T) {
	r := newReceiver(t, func(int64) int { return http.StatusOK })
	w := newWebhook(t, r.URL, func(c *events.WebhookConfig) { c.ExternalURL = "http://mon-a:8080/" })
	run(t, "webhook", w.Run)
	for _, ev := range lifecycle("web-1") {
		w.Handle(ev) // only dead and the recovery after it are sent
	}
	evs := lifecycle("web-1")

	fire := r.next(t)
	if fire.Version != "4" || fire.Status != "firing" || fire.Receiver != "hbmesh" || fire.TruncatedAlerts != 0 ||
		fire.ExternalURL != "http://mon-a:8080/" || fire.GroupKey == "" || len(fire.Alerts) != 1 {
		t.Fatalf("firing payload %+v", fire)
	}
	a := fire.Alerts[0]
	// The same labels from every monitor: who reports is an annotation.
	wantLabels := map[string]string{"alertname": "HbmeshPeerDead", "peer": "web-1", "host": "web-1.example", "prefix": "hb"}
	if !maps.Equal(a.Labels, wantLabels) || !maps.Equal(fire.CommonLabels, wantLabels) {
		t.Errorf("labels %v (common %v), want %v", a.Labels, fire.CommonLabels, wantLabels)
	}
	if a.Annotations["monitor"] != "mon-a" || !strings.Contains(a.Annotations["description"], "declared dead at 2025-03-01T12:00:02Z") {
		t.Errorf("annotations %v", a.Annotations)
	}
	if fire.GroupLabels["alertname"] != "HbmeshPeerDead" || fire.GroupLabels["peer"] != "web-1" {
		t.Errorf("group labels %v", fire.GroupLabels)
	}
	if a.Status != "firing" || !a.StartsAt.Equal(evs[2].Time) || !a.EndsAt.IsZero() || a.Fingerprint == "" ||
		a.Annotations["summary"] != "hbmesh peer web-1 is dead" || a.GeneratorURL != "http://mon-a:8080/?q=web-1" {
		t.Fatalf("firing alert %+v", a)
	}

	res := r.next(t)
	if res.Status != "resolved" || len(res.Alerts) != 1 || res.GroupKey != fire.GroupKey {
		t.Fatalf("resolved payload %+v", res)
	}
	b := res.Alerts[0]
	if b.Status != "resolved" || b.Fingerprint != a.Fingerprint || !b.StartsAt.Equal(a.StartsAt) || !b.EndsAt.Equal(evs[3].Time) {
		t.Fatalf("resolved alert %+v, firing %+v", b, a)
	}
	eventually(t, "stats", func() bool { return w.Stats().Sent == 2 })
	select {
	case p := <-r.got:
		t.Fatalf("unexpected extra payload %+v", p)
	default:
	}
}

func TestWebhookResolvedOnLeave(t *testing.T) {
	r := newReceiver(t, func(int64) int { return http.StatusOK })
	w := newWebhook(t, r.URL, nil)
	run(t, "webhook", w.Run)
	evs := lifecycle("db")
	w.Handle(evs[2])
	left := evs[4]
	left.Prev = monitor.StateDead
	w.Handle(left)
	if p := r.next(t); p.Status != "firing" {
		t.Fatalf("got %s first", p.Status)
	}
	if p := r.next(t); p.Status != "resolved" || p.Alerts[0].EndsAt.IsZero() {
		t.Fatalf("leave after dead: %+v", p)
	}
}

func TestWebhookRetries(t *testing.T) {
	r := newReceiver(t, func(call int64) int {
		if call <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	w := newWebhook(t, r.URL, nil)
	run(t, "webhook", w.Run)
	w.Handle(lifecycle("x")[2])
	if p := r.next(t); p.Status != "firing" {
		t.Fatalf("payload %+v", p)
	}
	eventually(t, "delivery", func() bool { return w.Stats().Sent == 1 })
	if st := w.Stats(); st.Retries != 2 || st.Failed != 0 || r.calls.Load() != 3 {
		t.Fatalf("stats %+v after %d calls, want 2 retries", st, r.calls.Load())
	}
}

func TestWebhookGivesUp(t *testing.T) {
	r := newReceiver(t, func(call int64) int {
		if call == 1 {
			return http.StatusBadRequest // permanent: not retried
		}
		return http.StatusInternalServerError
	})
	w := newWebhook(t, r.URL, func(c *events.WebhookConfig) { c.MaxRetries = 2 })
	run(t, "webhook", w.Run)
	w.Handle(lifecycle("x")[2])
	w.Handle(lifecycle("y")[2])
	eventually(t, "both to fail", func() bool { return w.Stats().Failed == 2 })
	if st := w.Stats(); st.Retries != 2 || r.calls.Load() != 4 {
		t.Fatalf("stats %+v after %d calls", st, r.calls.Load())
	}
}

func TestWebhookHangingReceiverNeverBlocksHandle(t *testing.T) {
	url, arrived := hangingServer(t)
	w := newWebhook(t, url, func(c *events.WebhookConfig) {
		c.QueueSize, c.Timeout, c.DrainTimeout = 2, time.Minute, 50*time.Millisecond
	})
	stop := run(t, "webhook", w.Run)
	w.Handle(lifecycle("x")[2])
	<-arrived // the worker is now stuck in a request

	const n = 1000
	start := time.Now()
	for range n {
		w.Handle(lifecycle("x")[2])
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("%d Handle calls took %s against a hanging receiver", n, took)
	}
	if st := w.Stats(); st.Dropped != n-2 {
		t.Fatalf("stats %+v, want %d dropped", st, n-2)
	}
	stop() // the drain time passes: the hanging request is aborted
	if st := w.Stats(); st.Failed != 1 || st.Dropped != n {
		t.Fatalf("after shutdown stats %+v, want 1 failed and %d dropped", st, n)
	}
}

// TestWebhookShutdownDrains: a monitor stopping right after a peer came
// back still delivers the resolution it queued, within the drain time:
// the webhook's firing alert has no endsAt, so a resolution lost at
// shutdown would leave the receiver paging forever.
func TestWebhookShutdownDrains(t *testing.T) {
	arrived, release := make(chan struct{}, 4), make(chan struct{})
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		arrived <- struct{}{}
		<-release
		got.Add(1)
	}))
	t.Cleanup(srv.Close)
	w := newWebhook(t, srv.URL, func(c *events.WebhookConfig) { c.DrainTimeout = time.Minute })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	w.Handle(lifecycle("x")[2]) // firing
	w.Handle(lifecycle("x")[3]) // resolved, queued behind it
	<-arrived
	cancel() // shutdown while the first post is in flight
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return")
	}
	if st := w.Stats(); st.Sent != 2 || st.Failed+st.Dropped != 0 || got.Load() != 2 {
		t.Fatalf("stats %+v, %d received; want both notifications delivered", st, got.Load())
	}
}

// TestWebhookHeadersNeverLogged: configured headers reach the receiver;
// neither their values nor the URL's path and query (where webhook tokens
// live) appear in the logs of a failed delivery.
func TestWebhookHeadersNeverLogged(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		got.Store(req.Header.Get("X-Token"))
		w.WriteHeader(http.StatusBadGateway)
	}))
	t.Cleanup(srv.Close)
	var logs syncio.Writer
	w := newWebhook(t, srv.URL+"/hook/pathtok?key=querytok", func(c *events.WebhookConfig) {
		c.Header = http.Header{"X-Token": {"headertok"}}
		c.MaxRetries = -1
		c.Logger = newLogger(&logs)
	})
	run(t, "webhook", w.Run)
	w.Handle(lifecycle("x")[2])
	eventually(t, "the delivery to fail", func() bool { return w.Stats().Failed == 1 })
	if v, _ := got.Load().(string); v != "headertok" {
		t.Errorf("X-Token %q", v)
	}
	out := logs.String()
	if !strings.Contains(out, "post not delivered") || !strings.Contains(out, "502") {
		t.Fatalf("failure not logged:\n%s", out)
	}
	for _, secret := range []string{"pathtok", "querytok", "headertok"} {
		if strings.Contains(out, secret) {
			t.Errorf("logs show %s:\n%s", secret, out)
		}
	}
}
