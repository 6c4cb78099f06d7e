package events_test

import (
	"maps"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/internal/events"
	"github.com/hbmesh/hbmesh/internal/meshtest"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/internal/promtest"
	"github.com/hbmesh/hbmesh/monitor"
)

// TestAlertmanagerReal drives a real Alertmanager (Debian's
// prometheus-alertmanager) from two real monitors over a real NATS
// server, with nodes that die and come back, and reads what its webhook
// receiver is notified of:
//
//   - a node killed: exactly one notification, firing, naming the peer,
//     though both monitors post it (and re-post it every resend);
//   - a second node killed while the first is still dead: a notification
//     of its own;
//   - the first node back: exactly one resolved notification;
//   - Alertmanager restarted with its storage wiped while the second node
//     stays dead: the next resend makes the alert fire again;
//   - the second node back: resolved.
//
// Every notification carries one alert with exactly the labels the
// monitors send, none of them per monitor.
func TestAlertmanagerReal(t *testing.T) {
	rcv := promtest.NewReceiver(t)
	am := promtest.Start(t, rcv, promtest.Config{})
	srv := natstest.Start(t)
	url := srv.ClientURL()

	const interval = 100 * time.Millisecond
	var mons []*monitor.Monitor
	for _, id := range []string{"mon-a", "mon-b"} {
		var sink atomic.Pointer[events.Alertmanager]
		m, _ := meshtest.StartMonitor(t, url, id, func(c *monitor.Config) {
			c.OnEvent = func(ev monitor.Event) {
				if s := sink.Load(); s != nil {
					s.Handle(ev)
				}
			}
		})
		cfg := events.DefaultAlertmanagerConfig(am.URL())
		cfg.MonitorID = id
		cfg.ResendInterval = 500 * time.Millisecond
		cfg.Labels = map[string]string{"cluster": "test"}
		a, err := events.NewAlertmanager(m, cfg)
		if err != nil {
			t.Fatal(err)
		}
		sink.Store(a)
		run(t, id+" alertmanager sink", a.Run)
		mons = append(mons, m)
	}
	alive := func(id string) {
		t.Helper()
		natstest.Eventually(t, "both monitors to see "+id+" alive", func() bool {
			for _, m := range mons {
				if p, ok := m.Peer(id); !ok || p.State != monitor.StateAlive {
					return false
				}
			}
			return true
		})
	}
	kill1 := meshtest.StartNode(t, url, "web-1", interval)
	kill2 := meshtest.StartNode(t, url, "web-2", interval)
	alive("web-1")
	alive("web-2")

	expect := func(status, peer string) {
		t.Helper()
		n := rcv.Next(t)
		want := map[string]string{"alertname": "HbmeshPeerDead", "peer": peer, "host": peer + ".example", "prefix": "hb", "cluster": "test"}
		if n.Status != status || len(n.Alerts) != 1 || n.Alerts[0].Status != status || !maps.Equal(n.Alerts[0].Labels, want) {
			t.Fatalf("notification %+v, want %s with one alert labelled %v\nalertmanager log:\n%s", n, status, want, am.Log())
		}
	}

	kill1()
	expect("firing", "web-1")
	kill2()
	expect("firing", "web-2")
	meshtest.StartNode(t, url, "web-1", interval)
	expect("resolved", "web-1")

	// A fresh storage directory: the restarted Alertmanager knows no
	// alert and no past notification, so only a resend can make web-2
	// fire again, and it notifies anew.
	am.Restart(t)
	expect("firing", "web-2")
	as := am.Alerts(t)
	if len(as) != 1 || as[0].Labels["peer"] != "web-2" || as[0].Status.State != "active" || !as[0].EndsAt.After(time.Now()) {
		t.Fatalf("alerts after the restart: %+v", as)
	}
	meshtest.StartNode(t, url, "web-2", interval)
	expect("resolved", "web-2")

	// The last notification is a barrier: anything extra (a second
	// firing from the other monitor, a repeat caused by a resend) would
	// have come before it.
	var got []string
	for _, n := range rcv.All() {
		got = append(got, n.Status+" "+n.Alerts[0].Labels["peer"])
	}
	want := []string{"firing web-1", "firing web-2", "resolved web-1", "firing web-2", "resolved web-2"}
	if !slices.Equal(got, want) {
		t.Fatalf("notifications %q, want %q", got, want)
	}
}

// TestAlertmanagerRealRestartedMonitorResolves: a monitor fires a dead
// peer's alert and restarts; the peer comes back before the restarted
// monitor's first resend fired the alert again. The real Alertmanager
// notifies the resolution now, not when the first run's endsAt (four
// resend intervals ahead) passes.
func TestAlertmanagerRealRestartedMonitorResolves(t *testing.T) {
	rcv := promtest.NewReceiver(t)
	am := promtest.Start(t, rcv, promtest.Config{})
	cfg := events.DefaultAlertmanagerConfig(am.URL())
	cfg.ResendInterval = 10 * time.Minute
	died := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)

	first, err := events.NewAlertmanager(newPeers(true, deadPeer("db-1", died)), cfg)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, "the first run", first.Run)
	if n := rcv.Next(t); n.Status != "firing" || n.Alerts[0].Labels["peer"] != "db-1" {
		t.Fatalf("notification %+v", n)
	}
	stop()

	back := deadPeer("db-1", time.Now().UTC())
	back.State = monitor.StateAlive
	second, err := events.NewAlertmanager(newPeers(false, back), cfg)
	if err != nil {
		t.Fatal(err)
	}
	run(t, "the restarted run", second.Run)
	ev := lifecycle("db-1")[3]
	second.Handle(ev)
	if n := rcv.Next(t); n.Status != "resolved" || n.Alerts[0].Labels["peer"] != "db-1" {
		t.Fatalf("notification %+v, want db-1 resolved\nalertmanager log:\n%s", n, am.Log())
	}
}

// TestAlertmanagerRealOutage: a real Alertmanager is stopped, its storage
// kept, while a peer it paged for stays dead, for longer than the alert's
// endsAt (4 resend intervals) and than the sink's queue holds re-sends
// for. Back, it is posted the peer's current alert: it neither notifies a
// resolution nor pages again. The peer's recovery then resolves it, a
// barrier behind which any extra notification would have come.
func TestAlertmanagerRealOutage(t *testing.T) {
	rcv := promtest.NewReceiver(t)
	am := promtest.Start(t, rcv, promtest.Config{GroupWait: 100 * time.Millisecond, GroupInterval: 200 * time.Millisecond})
	const resend = 500 * time.Millisecond
	src := newPeers(true, deadPeer("db-1", time.Now().Add(-time.Minute).UTC()))
	cfg := events.DefaultAlertmanagerConfig(am.URL())
	cfg.ResendInterval = resend
	cfg.QueueSize = 2
	// A failing post is retried for longer than a resend interval, as
	// with the defaults (8 retries, 92 s or more, against 1m).
	cfg.InitialBackoff, cfg.MaxBackoff = 20*time.Millisecond, 200*time.Millisecond
	a, err := events.NewAlertmanager(src, cfg)
	if err != nil {
		t.Fatal(err)
	}
	run(t, "alertmanager sink", a.Run)
	if n := rcv.Next(t); n.Status != "firing" || n.Alerts[0].Labels["peer"] != "db-1" {
		t.Fatalf("notification %+v", n)
	}

	am.NotificationLogged(t)
	am.Stop()
	// The outage itself, twice as long as an alert's endsAt lies ahead:
	// the re-sends queued during it would be expired if posted as they
	// were queued.
	time.Sleep(10 * resend)
	am.Resume(t)
	eventually(t, "the Alertmanager to hold db-1 firing again", func() bool {
		as := am.Alerts(t)
		return len(as) == 1 && as[0].Status.State == "active" && as[0].EndsAt.After(time.Now())
	})

	back := deadPeer("db-1", time.Now().UTC())
	back.State = monitor.StateAlive
	src.set(back)
	a.Handle(lifecycle("db-1")[3])
	if n := rcv.Next(t); n.Status != "resolved" {
		t.Fatalf("notification %+v, want db-1 resolved\nalertmanager log:\n%s", n, am.Log())
	}
	var got []string
	for _, n := range rcv.All() {
		got = append(got, n.Status+" "+n.Alerts[0].Labels["peer"])
	}
	if want := []string{"firing db-1", "resolved db-1"}; !slices.Equal(got, want) {
		t.Fatalf("notifications %q, want %q\nalertmanager log:\n%s", got, want, am.Log())
	}
	if st := a.Stats(); st.Dropped != 0 {
		t.Errorf("stats %+v: alerts dropped on a full queue", st)
	}
}
