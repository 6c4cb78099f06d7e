package notify_test

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
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

// TestAlertmanagerOutput: against a real Alertmanager (and a second
// address where none listens), a death fires one alert until AlertHold,
// and the recovery resolves it: one notification each.
func TestAlertmanagerOutput(t *testing.T) {
	rcv := promtest.NewReceiver(t)
	am := promtest.Start(t, rcv, promtest.Config{})
	srv := startJS(t)
	url := srv.ClientURL()
	p := publisher(t, url, "mon-a")
	n := startNotifier(t, url, func(c *notify.Config) {
		c.AlertmanagerURLs = []string{"http://127.0.0.1:1", am.URL()}
		c.AlertLabels = map[string]string{"cluster": "test"}
	})
	waitConsumer(t, url, n.ConsumerName(notify.OutputAlertmanager), 0)
	died := time.Now().UTC().Truncate(time.Millisecond)
	dead := deadEvent("db-1", 3)
	dead.Time = died
	p.Handle(dead)
	fire := rcv.Next(t)
	want := map[string]string{"alertname": "HbmeshPeerDead", "peer": "db-1", "host": "db-1.example", "prefix": "hb", "cluster": "test"}
	if fire.Status != "firing" || len(fire.Alerts) != 1 || !maps.Equal(fire.Alerts[0].Labels, want) {
		t.Fatalf("firing %+v", fire)
	}
	as := am.Alerts(t)
	if len(as) != 1 || !as[0].EndsAt.Equal(died.Add(24*time.Hour)) {
		t.Fatalf("alerts %+v, want one ending at %v", as, died.Add(24*time.Hour))
	}
	p.Handle(recovery("db-1", 4, time.Now().UTC()))
	if res := rcv.Next(t); res.Status != "resolved" || !maps.Equal(res.Alerts[0].Labels, want) {
		t.Fatalf("resolved %+v", res)
	}
	waitConsumer(t, url, n.ConsumerName(notify.OutputAlertmanager), 2)
	if st := n.Stats()[notify.OutputAlertmanager]; st.Sent != 2 || st.Failed != 0 {
		t.Errorf("stats %+v", st)
	}
	if all := rcv.All(); len(all) != 2 {
		t.Errorf("%d notifications, want 2", len(all))
	}
}
