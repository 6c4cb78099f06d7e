package memory_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/internal/memory"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/internal/syncio"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/node"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const waitTimeout = 15 * time.Second

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

func startJS(t *testing.T) (*embedded.Server, *nats.Conn) {
	t.Helper()
	s := natstest.Start(t, func(c *embedded.Config) {
		c.JetStream = true
		c.StoreDir = t.TempDir()
	})
	return s, natstest.Connect(t, s.ClientURL())
}

var since = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func samplePeers() []monitor.PeerInfo {
	return []monitor.PeerInfo{
		{ID: "web-1", Host: "web-1.example", State: monitor.StateAlive, Boot: "b1", Seq: 42, PID: 100,
			Interval: time.Second, Version: "1.2.3", Labels: map[string]string{"role": "web"}, Since: since,
			LastBeat: since.Add(3 * time.Second), LastSeen: since.Add(3 * time.Second)}, // LastSeen is restored as LastBeat
		{ID: "db:primary", Host: "db", State: monitor.StateDead, Boot: "b2", Seq: 7, PID: 200,
			Interval: 500 * time.Millisecond, Version: "1.2.3", Since: since.Add(time.Minute),
			LastBeat: since, LastSeen: since},
		{ID: "ünïcode", Host: "u", State: monitor.StateLeft, Boot: "b3", Seq: 1, PID: 300, Interval: time.Second, Since: since},
	}
}

func byID(ps []monitor.PeerInfo) map[string]monitor.PeerInfo {
	m := make(map[string]monitor.PeerInfo, len(ps))
	for _, p := range ps {
		m[p.ID] = p
	}
	return m
}

func TestFileStoreRoundTrip(t *testing.T) {
	dir := t.TempDir()
	fs, err := memory.NewFileStore(filepath.Join(dir, "peers.json"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := fs.Load(ctxT(t))
	if err != nil || len(got) != 0 {
		t.Fatalf("missing file: %v, %v", got, err)
	}
	want := samplePeers()
	for range 3 { // repeated saves replace the file
		if err := fs.Save(ctxT(t), want); err != nil {
			t.Fatal(err)
		}
	}
	got, err = fs.Load(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(byID(got), byID(want)) {
		t.Fatalf("loaded %+v\nwant %+v", got, want)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "peers.json" {
		t.Fatalf("directory holds %v, want only peers.json (no temp files)", entries)
	}
	if err := fs.Save(ctxT(t), nil); err != nil {
		t.Fatal(err)
	}
	if got, err := fs.Load(ctxT(t)); err != nil || len(got) != 0 {
		t.Fatalf("after saving none: %v, %v", got, err)
	}
}

func TestFileStoreCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "peers.json")
	if err := os.WriteFile(path, []byte(`{"format":2,"peers":[{"id":`), 0o644); err != nil {
		t.Fatal(err)
	}
	fs, _ := memory.NewFileStore(path)
	_, err := fs.Load(ctxT(t))
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Load of a corrupt file = %v, want an error naming %s", err, path)
	}
}

// TestReadsFormat1: a file and KV values written by monitors before
// records became monitor.PeerJSON (interval_ns, testdata/*format1*, as
// they wrote them) load as the peers they saved; what is written now is
// format 2, in milliseconds.
func TestReadsFormat1(t *testing.T) {
	want := samplePeers()
	old, err := os.ReadFile("testdata/peers-format1.json")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "peers.json")
	if err := os.WriteFile(path, old, 0o644); err != nil {
		t.Fatal(err)
	}
	fs, _ := memory.NewFileStore(path)
	got, err := fs.Load(ctxT(t))
	if err != nil || !reflect.DeepEqual(byID(got), byID(want)) {
		t.Fatalf("format 1 file: loaded %+v, %v\nwant %+v", got, err, want)
	}
	if err := fs.Save(ctxT(t), got); err != nil {
		t.Fatal(err)
	}
	now, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(now), `{"format":2,`) || !strings.Contains(string(now), `"interval_ms":500,`) || strings.Contains(string(now), "interval_ns") {
		t.Errorf("file written now: %s", now)
	}

	_, nc := startJS(t)
	kv, err := memory.OpenKV(ctxT(t), nc, memory.KVConfig{MonitorID: "mon-a"})
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	bucket, err := js.KeyValue(ctxT(t), kv.Bucket())
	if err != nil {
		t.Fatal(err)
	}
	values, err := os.ReadFile("testdata/kv-format1.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range strings.Split(strings.TrimSpace(string(values)), "\n") {
		if _, err := bucket.Put(ctxT(t), kv.Key(want[i].ID), []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	got, err = kv.Load(ctxT(t))
	if err != nil || !reflect.DeepEqual(byID(got), byID(want)) {
		t.Fatalf("format 1 KV values: loaded %+v, %v\nwant %+v", got, err, want)
	}
}

func TestFileStoreSaveFailsCleanly(t *testing.T) {
	fs, _ := memory.NewFileStore(filepath.Join(t.TempDir(), "missing-dir", "peers.json"))
	if err := fs.Save(ctxT(t), samplePeers()); err == nil {
		t.Fatal("Save into a missing directory succeeded")
	}
}

func TestKVStoreRoundTrip(t *testing.T) {
	_, nc := startJS(t)
	open := func(id string) *memory.KVStore {
		kv, err := memory.OpenKV(ctxT(t), nc, memory.KVConfig{MonitorID: id})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(kv.Close)
		return kv
	}
	a := open("mon-a")
	if a.Bucket() != "hbmesh_hb_peers" {
		t.Fatalf("bucket %q", a.Bucket())
	}
	want := samplePeers()
	if err := a.Save(ctxT(t), want); err != nil {
		t.Fatal(err)
	}
	// A restarted monitor with the same id finds its peers; another
	// monitor sharing the bucket does not.
	got, err := open("mon-a").Load(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(byID(got), byID(want)) {
		t.Fatalf("loaded %+v\nwant %+v", got, want)
	}
	if other, err := open("mon-b").Load(ctxT(t)); err != nil || len(other) != 0 {
		t.Fatalf("mon-b loaded %v, %v", other, err)
	}

	js, _ := jetstream.New(nc)
	kv, err := js.KeyValue(ctxT(t), "hbmesh_hb_peers")
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.History() != 1 || st.TTL() != 24*time.Hour {
		t.Fatalf("bucket history %d ttl %s", st.History(), st.TTL())
	}
	rev := func(key string) uint64 {
		e, err := kv.Get(ctxT(t), key)
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		return e.Revision()
	}
	r0, r1 := rev(a.Key("web-1")), rev(a.Key("db:primary"))

	// Only what changed is written; what vanished is deleted.
	next := []monitor.PeerInfo{want[0], want[1]}
	next[0].Seq = 99 // not in the fingerprint: no write
	next[1].State = monitor.StateAlive
	if err := a.Save(ctxT(t), next); err != nil {
		t.Fatal(err)
	}
	if rev(a.Key("web-1")) != r0 {
		t.Fatal("unchanged peer was re-put")
	}
	if rev(a.Key("db:primary")) == r1 {
		t.Fatal("changed peer was not re-put")
	}
	if _, err := kv.Get(ctxT(t), a.Key("ünïcode")); err == nil {
		t.Fatal("vanished peer's key not deleted")
	}
	got, err = open("mon-a").Load(ctxT(t))
	if err != nil || len(got) != 2 || byID(got)["db:primary"].State != monitor.StateAlive {
		t.Fatalf("after update loaded %+v, %v", got, err)
	}
}

func TestOpenChooses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.json")
	st, err := memory.Open(ctxT(t), nil, memory.Options{Path: path})
	if _, ok := st.(*memory.FileStore); !ok || err != nil {
		t.Fatalf("with a path: %T, %v", st, err)
	}

	plain := natstest.Start(t)
	var logs syncio.Writer
	st, err = memory.Open(ctxT(t), natstest.Connect(t, plain.ClientURL()), memory.Options{
		KV: memory.KVConfig{MonitorID: "m"}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if st != nil || err != nil {
		t.Fatalf("without JetStream: %T, %v; want no store", st, err)
	}
	// The operator who reads "off" learns what would turn it on.
	if got := logs.String(); !strings.Contains(got, "restart memory: off") || !strings.Contains(got, "--state-file") {
		t.Errorf("without JetStream the log does not name --state-file:\n%s", got)
	}

	_, nc := startJS(t)
	st, err = memory.Open(ctxT(t), nc, memory.Options{KV: memory.KVConfig{MonitorID: "m", Prefix: "hb.prod"}})
	kv, ok := st.(*memory.KVStore)
	if !ok || err != nil || kv.Bucket() != "hbmesh_hb_prod_peers" {
		t.Fatalf("with JetStream: %T, %v", st, err)
	}
}

// fleet is a running node that can be killed without a goodbye.
type fleetNode struct {
	nc   *nats.Conn
	stop func()
}

func startNode(t *testing.T, url, id string) *fleetNode {
	t.Helper()
	nc := natstest.Connect(t, url)
	cfg := node.DefaultConfig()
	cfg.ID, cfg.Interval = id, 100*time.Millisecond
	n, err := node.New(nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return &fleetNode{nc: nc, stop: stop}
}

// kill stops the node without a goodbye: the connection goes first.
func (n *fleetNode) kill() { n.nc.Close(); n.stop() }

// runMonitor starts a monitor; stop cancels it and waits for Run.
type runningMonitor struct {
	m      *monitor.Monitor
	events chan monitor.Event
	stop   func()
}

func runMonitor(t *testing.T, url, id string, restore []monitor.PeerInfo) *runningMonitor {
	t.Helper()
	r := &runningMonitor{events: make(chan monitor.Event, 1024)}
	cfg := monitor.DefaultConfig()
	cfg.ID = id
	cfg.Restore = restore
	cfg.OnEvent = func(ev monitor.Event) {
		select {
		case r.events <- ev:
		default:
			t.Errorf("test event buffer full")
		}
	}
	m, err := monitor.New(natstest.Connect(t, url), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.m = m
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("monitor %s: %v", id, err)
			}
		})
	}
	t.Cleanup(r.stop)
	return r
}

// waitAlive waits until the monitor has reported every id alive.
func (r *runningMonitor) waitAlive(t *testing.T, ids ...string) {
	t.Helper()
	need := map[string]bool{}
	for _, id := range ids {
		need[id] = true
	}
	deadline := time.After(waitTimeout)
	for len(need) > 0 {
		select {
		case ev := <-r.events:
			if ev.State == monitor.StateAlive {
				delete(need, ev.ID)
			}
		case <-deadline:
			t.Fatalf("never saw %v alive", need)
		}
	}
}

// TestRestartRemembersDeath is the point of restart memory: a node that
// dies while its monitor is down is still reported dead by the restarted
// monitor, and a node that kept beating is not.
func TestRestartRemembersDeath(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(t *testing.T, nc *nats.Conn) memory.Store
	}{
		{"kv", func(t *testing.T, nc *nats.Conn) memory.Store {
			st, err := memory.Open(ctxT(t), nc, memory.Options{KV: memory.KVConfig{MonitorID: "mon-a"}})
			if err != nil || st == nil {
				t.Fatalf("Open: %v, %v", st, err)
			}
			return st
		}},
		{"file", func(t *testing.T, _ *nats.Conn) memory.Store {
			st, err := memory.NewFileStore(filepath.Join(t.TempDir(), "peers.json"))
			if err != nil {
				t.Fatal(err)
			}
			return st
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, nc := startJS(t)
			url := s.ClientURL()
			x := startNode(t, url, "node-x")
			startNode(t, url, "node-y")

			store := tc.store(t, nc)
			a := runMonitor(t, url, "mon-a", nil)
			saver, err := memory.NewSaver(store, a.m.Peers, memory.SaverConfig{Interval: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			sctx, scancel := context.WithCancel(context.Background())
			saved := make(chan error, 1)
			go func() { saved <- saver.Run(sctx) }()
			t.Cleanup(scancel)
			a.waitAlive(t, "node-x", "node-y")

			// Stop monitor A, then its saver: the final save holds both.
			a.stop()
			scancel()
			if err := <-saved; err != nil {
				t.Fatalf("final save: %v", err)
			}
			store.Close()

			// X dies while no monitor is watching.
			x.kill()

			reopened := tc.store
			if tc.name == "file" {
				reopened = func(*testing.T, *nats.Conn) memory.Store { return store }
			}
			restored, err := reopened(t, nc).Load(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			if got := byID(restored); got["node-x"].State != monitor.StateAlive || got["node-y"].State != monitor.StateAlive {
				t.Fatalf("restored %+v", restored)
			}

			b := runMonitor(t, url, "mon-a", restored)
			deadline := time.After(waitTimeout)
			for xDead := false; !xDead; {
				select {
				case ev := <-b.events:
					switch {
					case ev.ID == "node-x" && ev.State == monitor.StateDead:
						xDead = true
					case ev.ID == "node-y" && ev.State != monitor.StateAlive:
						t.Fatalf("node-y went %s (%s)", ev.State, ev.Reason)
					}
				case <-deadline:
					t.Fatal("restarted monitor never reported node-x dead")
				}
			}
			if p, ok := b.m.Peer("node-y"); !ok || p.State != monitor.StateAlive {
				t.Fatalf("node-y: %+v", p)
			}
			b.stop()
			for len(b.events) > 0 {
				if ev := <-b.events; ev.ID == "node-y" && ev.State == monitor.StateDead {
					t.Fatal("node-y reported dead")
				}
			}
		})
	}
}

func TestSaverFinalSave(t *testing.T) {
	fs, _ := memory.NewFileStore(filepath.Join(t.TempDir(), "p.json"))
	var mu sync.Mutex
	peers := samplePeers()[:1]
	get := func() []monitor.PeerInfo { mu.Lock(); defer mu.Unlock(); return peers }
	s, err := memory.NewSaver(fs, get, memory.SaverConfig{Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, err := fs.Load(ctxT(t))
	if err != nil || len(got) != 1 || s.Stats().Saves != 1 {
		t.Fatalf("after shutdown: %v, %v, %+v", got, err, s.Stats())
	}
}

// TestSaverRunTwice: a second Run, after the first returned, returns
// ErrRunTwice without saving.
func TestSaverRunTwice(t *testing.T) {
	fs, _ := memory.NewFileStore(filepath.Join(t.TempDir(), "p.json"))
	s, err := memory.NewSaver(fs, samplePeers, memory.SaverConfig{Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Run(ctx); !errors.Is(err, memory.ErrRunTwice) || s.Stats().Saves != 1 {
		t.Fatalf("second Run = %v with %d saves, want ErrRunTwice and 1", err, s.Stats().Saves)
	}
}
