package notify_test

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/internal/events"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/internal/notify"
	"github.com/hbmesh/hbmesh/internal/promtest"
	"github.com/hbmesh/hbmesh/monitor"
)

// recovery is peer id back from the dead at t.
func recovery(id string, seq uint64, t time.Time) monitor.Event {
	ev := deadEvent(id, seq)
	ev.Time, ev.State, ev.Prev, ev.Reason = t, monitor.StateAlive, monitor.StateDead, monitor.ReasonBeat
	return ev
}

// TestWebhookOutput: the webhook gets the payload monitor --webhook
// sends, with the configured header; a failed post is delivered again;
// the recovery's startsAt is the death's, found in the stream.
func TestWebhookOutput(t *testing.T) {
	srv := startJS(t)
	url := srv.ClientURL()
	p := publisher(t, url, "mon-a")
	var calls atomic.Int64
	got := make(chan events.Payload, 8)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Token") != "s3cret" {
			t.Errorf("X-Token %q", r.Header.Get("X-Token"))
		}
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var pl events.Payload
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &pl); err != nil {
			t.Errorf("payload %s: %v", b, err)
		}
		got <- pl
	}))
	t.Cleanup(rcv.Close)
	n := startNotifier(t, url, func(c *notify.Config) {
		c.WebhookURL = rcv.URL + "/hook"
		c.WebhookHeader = http.Header{"X-Token": {"s3cret"}}
	})
	waitConsumer(t, url, n.ConsumerName(notify.OutputWebhook), 0)
	died := time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
	dead := deadEvent("web-1", 9)
	dead.Time = died
	p.Handle(dead)
	p.Handle(recovery("web-1", 10, died.Add(30*time.Second)))
	next := func() events.Payload {
		select {
		case pl := <-got:
			return pl
		case <-time.After(natstest.Timeout):
			t.Fatal("no webhook")
			return events.Payload{}
		}
	}
	fire, res := next(), next()
	want := map[string]string{"alertname": "HbmeshPeerDead", "peer": "web-1", "host": "web-1.example", "prefix": "hb"}
	if fire.Status != "firing" || !maps.Equal(fire.Alerts[0].Labels, want) || fire.Alerts[0].Annotations["monitor"] != "mon-a" || !fire.Alerts[0].StartsAt.Equal(died) {
		t.Errorf("firing %+v", fire)
	}
	if res.Status != "resolved" || !res.Alerts[0].StartsAt.Equal(died) || !res.Alerts[0].EndsAt.Equal(died.Add(30*time.Second)) || res.Alerts[0].Fingerprint != fire.Alerts[0].Fingerprint {
		t.Errorf("resolved %+v", res)
	}
	waitConsumer(t, url, n.ConsumerName(notify.OutputWebhook), 2)
	if st := n.Stats()[notify.OutputWebhook]; st.Sent != 2 || st.Retries != 1 || calls.Load() != 3 {
		t.Errorf("stats %+v after %d calls", st, calls.Load())
	}
}

// TestAlertmanagerOutput: against two real Alertmanagers, the second
// behind a proxy that refuses its first post, a death fires one alert
// until AlertHold in each of them, and the recovery resolves it in each:
// the event the second refused is delivered again, to both, and acked
// once both accepted it. Each notifies its receiver once per change.
func TestAlertmanagerOutput(t *testing.T) {
	rcv1, rcv2 := promtest.NewReceiver(t), promtest.NewReceiver(t)
	am1 := promtest.Start(t, rcv1, promtest.Config{})
	am2 := promtest.Start(t, rcv2, promtest.Config{})
	target, err := neturl.Parse(am2.URL())
	if err != nil {
		t.Fatal(err)
	}
	var posts atomic.Int64
	fwd := httputil.NewSingleHostReverseProxy(target)
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if posts.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fwd.ServeHTTP(w, r)
	}))
	t.Cleanup(flaky.Close)

	srv := startJS(t)
	url := srv.ClientURL()
	p := publisher(t, url, "mon-a")
	n := startNotifier(t, url, func(c *notify.Config) {
		c.AlertmanagerURLs = []string{am1.URL(), flaky.URL}
		c.AlertLabels = map[string]string{"cluster": "test"}
	})
	waitConsumer(t, url, n.ConsumerName(notify.OutputAlertmanager), 0)
	died := time.Now().UTC().Truncate(time.Millisecond)
	dead := deadEvent("db-1", 3)
	dead.Time = died
	p.Handle(dead)
	want := map[string]string{"alertname": "HbmeshPeerDead", "peer": "db-1", "host": "db-1.example", "prefix": "hb", "cluster": "test"}
	for i, rcv := range []*promtest.Receiver{rcv1, rcv2} {
		if fire := rcv.Next(t); fire.Status != "firing" || len(fire.Alerts) != 1 || !maps.Equal(fire.Alerts[0].Labels, want) {
			t.Fatalf("Alertmanager %d: firing %+v", i+1, fire)
		}
	}
	waitConsumer(t, url, n.ConsumerName(notify.OutputAlertmanager), 1)
	for i, am := range []*promtest.Alertmanager{am1, am2} {
		if as := am.Alerts(t); len(as) != 1 || !as[0].EndsAt.Equal(died.Add(24*time.Hour)) {
			t.Fatalf("Alertmanager %d: alerts %+v, want one ending at %v", i+1, as, died.Add(24*time.Hour))
		}
	}
	if st := n.Stats()[notify.OutputAlertmanager]; st.Sent != 1 || st.Retries != 1 || posts.Load() != 2 {
		t.Errorf("after the death: stats %+v and %d posts to the second", st, posts.Load())
	}

	p.Handle(recovery("db-1", 4, time.Now().UTC()))
	for i, rcv := range []*promtest.Receiver{rcv1, rcv2} {
		if res := rcv.Next(t); res.Status != "resolved" || !maps.Equal(res.Alerts[0].Labels, want) {
			t.Fatalf("Alertmanager %d: resolved %+v", i+1, res)
		}
	}
	waitConsumer(t, url, n.ConsumerName(notify.OutputAlertmanager), 2)
	if st := n.Stats()[notify.OutputAlertmanager]; st.Sent != 2 || st.Retries != 1 || st.Failed != 0 {
		t.Errorf("stats %+v", st)
	}
	for i, rcv := range []*promtest.Receiver{rcv1, rcv2} {
		if all := rcv.All(); len(all) != 2 {
			t.Errorf("Alertmanager %d: %d notifications, want 2", i+1, len(all))
		}
	}
}

// TestAlertmanagerOutputMemberDown: an Alertmanager that never answers
// keeps the event from being acknowledged, though the other accepted it
// each time: after MaxDeliver deliveries it is given up, counted as
// failed.
func TestAlertmanagerOutputMemberDown(t *testing.T) {
	var accepted atomic.Int64
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		accepted.Add(1)
	}))
	t.Cleanup(good.Close)
	srv := startJS(t)
	url := srv.ClientURL()
	p := publisher(t, url, "mon-a")
	n := startNotifier(t, url, func(c *notify.Config) {
		c.AlertmanagerURLs = []string{"http://127.0.0.1:1", good.URL}
		c.MaxDeliver = 3
	})
	waitConsumer(t, url, n.ConsumerName(notify.OutputAlertmanager), 0)
	p.Handle(deadEvent("db-1", 3))
	waitConsumer(t, url, n.ConsumerName(notify.OutputAlertmanager), 1)
	if st := n.Stats()[notify.OutputAlertmanager]; st.Sent != 0 || st.Failed != 1 || st.Retries != 2 || accepted.Load() != 3 {
		t.Errorf("stats %+v, %d posts accepted by the other", st, accepted.Load())
	}
}
