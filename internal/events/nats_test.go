package events_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hbmesh/hbmesh/internal/cfgerr"
	"github.com/hbmesh/hbmesh/internal/events"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/node"
	"github.com/hbmesh/hbmesh/wire"
)

func newPublisher(t *testing.T, nc *nats.Conn, monitorID, stream string) *events.NATSPublisher {
	t.Helper()
	cfg := events.DefaultNATSConfig()
	cfg.MonitorID = monitorID
	cfg.Stream = stream
	p, err := events.NewNATSPublisher(nc, cfg)
	if err != nil {
		t.Fatalf("NewNATSPublisher: %v", err)
	}
	return p
}

func TestNATSConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*events.NATSConfig)
		want string
	}{
		{"prefix", func(c *events.NATSConfig) { c.Prefix = "a..b" }, "Prefix"},
		{"monitor", func(c *events.NATSConfig) { c.MonitorID = "a.b" }, "MonitorID"},
		{"stream", func(c *events.NATSConfig) { c.Stream = "a.b" }, `Stream "a.b"`},
		{"queue", func(c *events.NATSConfig) { c.QueueSize = -1 }, "QueueSize -1"},
		{"replicas", func(c *events.NATSConfig) { c.Replicas = 6 }, "Replicas 6"},
		{"backoff", func(c *events.NATSConfig) { c.RetryBackoff = time.Microsecond }, "RetryBackoff 1µs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := events.DefaultNATSConfig()
			tc.mod(&cfg)
			err := cfg.Validate()
			if !errors.Is(err, cfgerr.ErrInvalid) || !contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig naming %q", err, tc.want)
			}
		})
	}
	if cfg := events.DefaultNATSConfig(); cfg.Validate() != nil {
		t.Fatalf("default config invalid: %v", cfg.Validate())
	}
}

func contains(s, sub string) bool { return len(sub) == 0 || indexOf(s, sub) >= 0 }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestNATSCoreSubscriberGetsJSON(t *testing.T) {
	s, nc := startJS(t)
	sub := natstest.Connect(t, s.ClientURL())
	ch := make(chan *nats.Msg, 16)
	if _, err := sub.ChanSubscribe(wire.MustSubjects("hb").Events(), ch); err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	p := newPublisher(t, nc, "mon-a", "")
	run(t, "publisher", p.Run)
	evs := lifecycle("web-1")
	for _, ev := range evs {
		p.Handle(ev)
	}
	for i, want := range evs {
		select {
		case m := <-ch:
			if wantSubj := "hb.events." + want.State.String() + ".web-1"; m.Subject != wantSubj {
				t.Fatalf("event %d on %q, want %q", i, m.Subject, wantSubj)
			}
			if id := m.Header.Get(jetstream.MsgIDHeader); id != events.MsgID(&want) {
				t.Fatalf("event %d has Nats-Msg-Id %q, want %q", i, id, events.MsgID(&want))
			}
			got, mon, err := monitor.DecodeEvent(m.Data)
			if err != nil {
				t.Fatalf("event %d: %v: %s", i, err, m.Data)
			}
			if mon != "mon-a" || got.ID != "web-1" || got.State != want.State || got.Seq != want.Seq || got.Reason != want.Reason {
				t.Fatalf("event %d = %v from %q, want %v from mon-a", i, got, mon, want.String())
			}
		case <-time.After(waitTimeout):
			t.Fatalf("event %d not received", i)
		}
	}
	if st := p.Stats(); st.Sent != uint64(len(evs)) || st.Failed != 0 || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestMsgIDDeterministic(t *testing.T) {
	evs := lifecycle("x")
	a, b := evs[2], evs[2]
	a.Time, a.Reason = a.Time.Add(time.Second), "other"
	if events.MsgID(&a) != events.MsgID(&b) || len(events.MsgID(&a)) != 32 {
		t.Fatalf("same transition, ids %q and %q", events.MsgID(&a), events.MsgID(&b))
	}
	// The second round of suspect at one seq is not a duplicate of the
	// first; the first keeps the id it always had.
	c := b
	c.Repeat = 1
	if events.MsgID(&c) == events.MsgID(&b) {
		t.Fatalf("Repeat 1 and 0 share id %s", events.MsgID(&c))
	}
	seen := map[string]bool{}
	for i := range evs {
		id := events.MsgID(&evs[i])
		if seen[id] {
			t.Fatalf("event %d: id %s reused", i, id)
		}
		seen[id] = true
	}
}

// streamCount returns how many messages of stream are on subject filter.
func streamCount(t *testing.T, js jetstream.JetStream, stream, filter string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

func TestNATSStreamOneRecordPerTransition(t *testing.T) {
	_, nc := startJS(t)
	pa := newPublisher(t, nc, "mon-a", "HBEVENTS")
	pb := newPublisher(t, nc, "mon-b", "HBEVENTS")
	run(t, "a", pa.Run)
	run(t, "b", pb.Run)
	evs := append(lifecycle("x"), lifecycle("y")...)
	for _, ev := range evs {
		pa.Handle(ev)
		pb.Handle(ev)
	}
	n := uint64(len(evs))
	eventually(t, "both publishers to finish", func() bool {
		return pa.Stats().Sent == n && pb.Stats().Sent == n
	})
	js, _ := jetstream.New(nc)
	if got := streamCount(t, js, "HBEVENTS", "hb.events.>"); got != n {
		t.Fatalf("stream holds %d records, want %d (one per transition)", got, n)
	}
	if dups := pa.Stats().Duplicates + pb.Stats().Duplicates; dups != n {
		t.Fatalf("%d duplicates acknowledged, want %d", dups, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	s, err := js.Stream(ctx, "HBEVENTS")
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	if len(cfg.Subjects) != 1 || cfg.Subjects[0] != "hb.events.*.*" || cfg.Storage != jetstream.FileStorage ||
		cfg.MaxAge != 7*24*time.Hour || cfg.MaxMsgs != 1_000_000 || cfg.Duplicates != 2*time.Minute || cfg.Discard != jetstream.DiscardOld {
		t.Fatalf("stream created with %+v", cfg)
	}
}

func TestNATSExistingStreamUsedAsIs(t *testing.T) {
	_, nc := startJS(t)
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "MINE", Subjects: []string{"hb.events.>"}, Storage: jetstream.MemoryStorage, MaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	p := newPublisher(t, nc, "mon-a", "MINE")
	run(t, "publisher", p.Run)
	p.Handle(lifecycle("x")[0])
	eventually(t, "publish", func() bool { return p.Stats().Sent == 1 })
	s, err := js.Stream(ctx, "MINE")
	if err != nil {
		t.Fatal(err)
	}
	if cfg := s.CachedInfo().Config; cfg.MaxAge != time.Hour || cfg.Storage != jetstream.MemoryStorage || s.CachedInfo().State.Msgs != 1 {
		t.Fatalf("existing stream changed or not used: %+v, %d msgs", cfg, s.CachedInfo().State.Msgs)
	}
}

func TestNATSDurableConsumerCatchesUp(t *testing.T) {
	_, nc := startJS(t)
	p := newPublisher(t, nc, "mon-a", "HBEVENTS")
	run(t, "publisher", p.Run)
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var stream jetstream.Stream
	eventually(t, "the stream to be created", func() bool {
		var err error
		stream, err = js.Stream(ctx, "HBEVENTS")
		return err == nil
	})
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "pager", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	// The consumer is down (nobody fetches) while events are published.
	const n = 50
	for i := range n {
		p.Handle(monitor.Event{Time: t0, ID: fmt.Sprintf("p%d", i%5), Boot: "b", State: monitor.StateDead, Prev: monitor.StateSuspect, Reason: monitor.ReasonTimeout, Seq: uint64(i + 1)})
	}
	eventually(t, "publishing", func() bool { return p.Stats().Sent == n })

	var got []uint64
	for len(got) < n {
		batch, err := cons.Fetch(n-len(got), jetstream.FetchMaxWait(waitTimeout))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			ev, _, err := monitor.DecodeEvent(m.Data())
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, ev.Seq)
			if err := m.Ack(); err != nil {
				t.Fatal(err)
			}
		}
		if batch.Error() != nil {
			t.Fatal(batch.Error())
		}
	}
	for i, seq := range got {
		if seq != uint64(i+1) {
			t.Fatalf("message %d has seq %d; got %v", i, seq, got)
		}
	}
}

func TestNATSHandleNeverBlocks(t *testing.T) {
	_, nc := startJS(t)
	cfg := events.DefaultNATSConfig()
	cfg.QueueSize = 4
	p, err := events.NewNATSPublisher(nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Not running: the queue fills and the rest is dropped.
	for range 10 {
		p.Handle(lifecycle("x")[0])
	}
	if st := p.Stats(); st.Dropped != 6 {
		t.Fatalf("stats %+v, want 6 dropped", st)
	}
	// Run drains the queue.
	run(t, "publisher", p.Run)
	eventually(t, "queued events published", func() bool { return p.Stats().Sent == 4 })
}

// TestNATSTwoMonitorsOneDeathRecord runs two real monitors against real
// nodes, both publishing into one stream. A node killed without goodbye is
// reported dead by both, and the stream keeps exactly one record of it.
// A monitor without a stream publishes plain core messages on the subjects
// another monitor's stream captures; the stream must still keep one
// record per transition.
func TestNATSCorePublishesDedupInAnotherMonitorsStream(t *testing.T) {
	_, nc := startJS(t)
	js, _ := jetstream.New(nc)
	withStream := newPublisher(t, nc, "mon-a", "HBEVENTS")
	core := newPublisher(t, nc, "mon-b", "")
	run(t, "stream", withStream.Run)
	run(t, "core", core.Run)
	eventually(t, "the stream to exist", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		_, err := js.Stream(ctx, "HBEVENTS")
		return err == nil
	})
	evs := lifecycle("x")
	for i, ev := range evs {
		// Alternate who publishes first, so the core publish is both the
		// original and the duplicate.
		if i%2 == 0 {
			core.Handle(ev)
			withStream.Handle(ev)
		} else {
			withStream.Handle(ev)
			core.Handle(ev)
		}
	}
	n := uint64(len(evs))
	eventually(t, "both publishers to finish", func() bool {
		return withStream.Stats().Sent == n && core.Stats().Sent == n
	})
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	// The stream's own publishes are acknowledged, so they are stored; the
	// core ones are stored, or not, before the flush above returns.
	if got := streamCount(t, js, "HBEVENTS", "hb.events.>"); got != n {
		t.Fatalf("stream holds %d records, want %d (one per transition)", got, n)
	}
}

func TestNATSTwoMonitorsOneDeathRecord(t *testing.T) {
	s, nc := startJS(t)
	js, _ := jetstream.New(nc)

	type mon struct {
		pub    *events.NATSPublisher
		seen   atomic.Uint64
		deadCh chan struct{}
	}
	var mons [2]*mon
	for i, id := range []string{"mon-a", "mon-b"} {
		m := &mon{pub: newPublisher(t, natstest.Connect(t, s.ClientURL()), id, "HBEVENTS"), deadCh: make(chan struct{})}
		mons[i] = m
		run(t, id+" publisher", m.pub.Run)
		var once sync.Once
		cfg := monitor.DefaultConfig()
		cfg.ID = id
		cfg.OnEvent = func(ev monitor.Event) {
			m.pub.Handle(ev)
			m.seen.Add(1)
			if ev.ID == "victim" && ev.State == monitor.StateDead {
				once.Do(func() { close(m.deadCh) })
			}
			if ev.ID == "survivor" && ev.State == monitor.StateDead {
				t.Errorf("%s: survivor reported dead", id)
			}
		}
		mn, err := monitor.New(natstest.Connect(t, s.ClientURL()), cfg)
		if err != nil {
			t.Fatal(err)
		}
		run(t, id, mn.Run)
		eventually(t, id+" ready", func() bool { return mn.Ready() == nil })
	}

	startNode := func(id string) (*nats.Conn, func()) {
		ncn := natstest.Connect(t, s.ClientURL())
		cfg := node.DefaultConfig()
		cfg.ID, cfg.Interval = id, 100*time.Millisecond
		n, err := node.New(ncn, cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = n.Run(ctx) }()
		stop := func() { cancel(); <-done }
		t.Cleanup(stop)
		return ncn, stop
	}
	victimNC, stopVictim := startNode("victim")
	_, stopSurvivor := startNode("survivor")
	defer stopSurvivor()

	eventually(t, "both monitors to see both nodes", func() bool {
		return streamCount(t, js, "HBEVENTS", "hb.events.alive.*") >= 2 && mons[0].seen.Load() >= 2 && mons[1].seen.Load() >= 2
	})
	// No goodbye: the connection goes first, then the node stops.
	victimNC.Close()
	stopVictim()

	for i, m := range mons {
		select {
		case <-m.deadCh:
		case <-time.After(waitTimeout):
			t.Fatalf("monitor %d never reported the victim dead", i)
		}
	}
	for _, m := range mons {
		eventually(t, "publishers to catch up", func() bool {
			st := m.pub.Stats()
			return st.Sent+st.Failed+st.Dropped >= m.seen.Load()
		})
		if st := m.pub.Stats(); st.Failed != 0 || st.Dropped != 0 {
			t.Fatalf("publisher stats %+v", st)
		}
	}
	if got := streamCount(t, js, "HBEVENTS", "hb.events.dead.victim"); got != 1 {
		t.Fatalf("stream holds %d dead records of the victim, want exactly 1", got)
	}
}
