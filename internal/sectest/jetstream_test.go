package sectest_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/internal/events"
	"github.com/hbmesh/hbmesh/internal/memory"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/internal/notify"
	"github.com/hbmesh/hbmesh/monitor"
)

// streamPublisher runs monitor1's event publisher, keeping the events in
// the stream HBEVENTS, on mon until the test ends.
func streamPublisher(t *testing.T, mon client) *events.NATSPublisher {
	t.Helper()
	cfg := events.DefaultNATSConfig()
	cfg.MonitorID, cfg.Stream = "monitor1", "HBEVENTS"
	pub, err := events.NewNATSPublisher(mon.Conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	run(t, "events publisher", pub.Run, nil)
	return pub
}

// TestMonitorJetStream: the monitor's JetStream grants are enough for the
// events stream (HBEVENTS) and for a restart-memory KV bucket (hbmesh_hb_peers),
// and a monitor cannot reach beyond them.
func TestMonitorJetStream(t *testing.T) {
	s := startServer(t, usersConf, func(c *embedded.Config) {
		c.JetStream = true
		c.StoreDir = t.TempDir()
	})
	mon := connect(t, s.ClientURL(), forms()[0].login("monitor1"), nats.CustomInboxPrefix(monitorInbox))
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()

	t.Run("events stream", func(t *testing.T) {
		pub := streamPublisher(t, mon)
		ev := monitor.Event{
			Time: time.Now(), ID: "node-a", State: monitor.StateDead, Prev: monitor.StateSuspect,
			Reason: monitor.ReasonTimeout, Boot: "0123456789abcdef", Seq: 7, Interval: interval,
		}
		pub.Handle(ev)
		pub.Handle(ev) // a second monitor's report of the same death
		natstest.Eventually(t, "both events acknowledged", func() bool { return pub.Stats().Sent == 2 })
		if st := pub.Stats(); st.Duplicates != 1 || st.Failed != 0 {
			t.Fatalf("publisher stats %+v, want 1 duplicate and no failure", st)
		}
		js, err := jetstream.New(mon.Conn)
		if err != nil {
			t.Fatal(err)
		}
		stream, err := js.Stream(ctx, "HBEVENTS")
		if err != nil {
			t.Fatal(err)
		}
		if n := stream.CachedInfo().State.Msgs; n != 1 {
			t.Fatalf("stream holds %d events, want 1", n)
		}
	})

	t.Run("restart memory", func(t *testing.T) {
		js, err := jetstream.New(mon.Conn)
		if err != nil {
			t.Fatal(err)
		}
		kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "hbmesh_hb_peers", History: 1})
		if err != nil {
			t.Fatalf("create bucket: %v", err)
		}
		if kv, err = js.KeyValue(ctx, "hbmesh_hb_peers"); err != nil {
			t.Fatalf("open bucket: %v", err)
		}
		for _, id := range []string{"node-a", "node-b"} {
			if _, err := kv.Put(ctx, id, []byte(`{"state":"alive"}`)); err != nil {
				t.Fatalf("put %s: %v", id, err)
			}
		}
		if e, err := kv.Get(ctx, "node-a"); err != nil || string(e.Value()) != `{"state":"alive"}` {
			t.Fatalf("get node-a: %v, %v", e, err)
		}
		if err := kv.Delete(ctx, "node-b"); err != nil {
			t.Fatalf("delete node-b: %v", err)
		}
		keys, err := kv.ListKeys(ctx)
		if err != nil {
			t.Fatalf("list keys: %v", err)
		}
		var got []string
		for k := range keys.Keys() {
			got = append(got, k)
		}
		if len(got) != 1 || got[0] != "node-a" {
			t.Fatalf("keys %v, want [node-a]", got)
		}
		w, err := kv.WatchAll(ctx)
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
		defer w.Stop()
		for u := range w.Updates() {
			if u == nil { // initial values delivered
				break
			}
		}
	})

	t.Run("restart memory through internal/memory", func(t *testing.T) {
		// The store the monitor really uses, with its default bucket name,
		// must work within the template's grants.
		store, err := memory.OpenKV(ctx, mon.Conn, memory.KVConfig{MonitorID: "monitor1"})
		if err != nil {
			t.Fatalf("open KV store: %v", err)
		}
		defer store.Close()
		want := []monitor.PeerInfo{{ID: "node-a", Host: "a", State: monitor.StateAlive, Boot: "b", Seq: 3, Interval: time.Second}}
		if err := store.Save(ctx, want); err != nil {
			t.Fatalf("save: %v", err)
		}
		got, err := store.Load(ctx)
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		if len(got) != 1 || got[0].ID != "node-a" || got[0].Boot != "b" {
			t.Fatalf("loaded %+v, want node-a", got)
		}
	})

	t.Run("nothing else", func(t *testing.T) {
		for _, subject := range []string{
			"$JS.API.STREAM.DELETE.HBEVENTS",
			"$JS.API.STREAM.PURGE.KV_hbmesh_hb_peers",
			"$JS.API.STREAM.CREATE.OTHER",
			"$JS.API.STREAM.LIST",
			"$JS.API.CONSUMER.CREATE.HBEVENTS",
			"$KV.OTHER.x",
		} {
			if err := mon.Publish(subject, nil); err != nil {
				t.Fatal(err)
			}
			mon.errs.take(t, violation("pub", subject))
		}
	})
}

// TestNotifyJetStream: the notify grants are enough for hbmesh notify with
// every output on the events stream a monitor keeps: each output's
// consumer is bound, the death and recovery reach the hook, the webhook
// and the Alertmanager once each, and the recovery's lookup of what came
// before it (a direct get) is allowed. connect fails the test on any
// permission violation. What notify may not do is in TestPermissions.
func TestNotifyJetStream(t *testing.T) {
	for _, f := range forms() {
		t.Run(f.name, func(t *testing.T) {
			s := startServer(t, f.conf, func(c *embedded.Config) {
				c.JetStream = true
				c.StoreDir = t.TempDir()
			})
			url := s.ClientURL()
			mon := connect(t, url, f.login("monitor1"), nats.CustomInboxPrefix(monitorInbox))
			pub := streamPublisher(t, mon)
			ev := monitor.Event{
				Time: time.Now(), ID: "node-a", State: monitor.StateAlive, Reason: monitor.ReasonFirstBeat,
				Boot: "0123456789abcdef", Seq: 1, Interval: interval,
			}
			pub.Handle(ev) // creates the stream, which notify needs
			natstest.Eventually(t, "the stream", func() bool { return pub.Stats().Sent == 1 })

			var posts sync.Map // path -> count
			rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n, _ := posts.LoadOrStore(r.URL.Path, new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
			}))
			t.Cleanup(rcv.Close)
			hook := filepath.Join(t.TempDir(), "hook.log")
			cfg := notify.DefaultConfig("HBEVENTS")
			cfg.Command = `echo "$HBMESH_PEER_ID $HBMESH_STATE" >> "` + hook + `"`
			cfg.States = []monitor.State{monitor.StateDead, monitor.StateAlive}
			cfg.WebhookURL = rcv.URL + "/hook"
			cfg.AlertmanagerURLs = []string{rcv.URL}
			nc := connect(t, url, f.login("notify1"), nats.CustomInboxPrefix(notifyInbox))
			n, err := notify.New(nc.Conn, cfg)
			if err != nil {
				t.Fatal(err)
			}
			run(t, "notify", n.Run, nil)
			natstest.Eventually(t, "notify ready", func() bool { return n.Ready() == nil })

			dead := ev
			dead.Time, dead.State, dead.Prev, dead.Reason, dead.Seq = time.Now(), monitor.StateDead, monitor.StateSuspect, monitor.ReasonTimeout, 9
			pub.Handle(dead)
			back := dead
			back.Time, back.State, back.Prev, back.Reason, back.Seq = time.Now(), monitor.StateAlive, monitor.StateDead, monitor.ReasonBeat, 12
			pub.Handle(back)
			count := func(path string) int64 {
				if n, ok := posts.Load(path); ok {
					return n.(*atomic.Int64).Load()
				}
				return 0
			}
			natstest.Eventually(t, "every output handled both", func() bool {
				st := n.Stats()
				return st[notify.OutputExec].Sent == 2 && st[notify.OutputWebhook].Sent == 2 && st[notify.OutputAlertmanager].Sent == 2
			})
			b, err := os.ReadFile(hook)
			if err != nil || string(b) != "node-a dead\nnode-a alive\n" {
				t.Errorf("hook log %q, %v", b, err)
			}
			if w, a := count("/hook"), count("/api/v2/alerts"); w != 2 || a != 2 {
				t.Errorf("posts: webhook %d, Alertmanager %d, want 2 each", w, a)
			}
			for o, st := range n.Stats() {
				if st.Failed != 0 || st.Retries != 0 || st.Dropped != 0 {
					t.Errorf("%s: %+v", o, st)
				}
			}
		})
	}
}
