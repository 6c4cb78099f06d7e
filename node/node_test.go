package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/clock"
	"github.com/hbmesh/hbmesh/internal/syncio"
	"github.com/hbmesh/hbmesh/node"
	"github.com/hbmesh/hbmesh/wire"
)

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// testConfig returns a jitter-free config on a fake clock, so a test
// advancing the clock by Interval fires exactly one beat.
func testConfig(fake *clock.Fake) node.Config {
	cfg := node.DefaultConfig()
	cfg.Host = "web-1.example.com"
	cfg.ID = "" // derive from Host
	cfg.Interval = time.Second
	cfg.Jitter = 0
	cfg.PID = 4242
	cfg.Version = "v1.2.3"
	cfg.Labels = map[string]string{"role": "web", "az": "eu-1a"}
	cfg.Clock = fake
	return cfg
}

func TestBeats(t *testing.T) {
	url := startServer(t)
	beats := subscribe(t, connect(t, url), subjects.Beats())
	fake := clock.NewFake(epoch)
	n := start(t, connect(t, url), testConfig(fake))

	b, m := nextBeat(t, beats)
	if m.Subject != subjects.Beat("web-1_example_com") {
		t.Errorf("subject = %q", m.Subject)
	}
	want := wire.Beat{
		V: wire.Version, ID: "web-1_example_com", Host: "web-1.example.com", PID: 4242,
		Boot: n.Boot(), Seq: 1, TS: epoch, IntervalMS: 1000, Status: wire.StatusAlive,
		Version: "v1.2.3", Labels: map[string]string{"role": "web", "az": "eu-1a"},
	}
	gj, _ := json.Marshal(b)
	wj, _ := json.Marshal(want)
	if string(gj) != string(wj) {
		t.Errorf("first beat:\n got %s\nwant %s", gj, wj)
	}
	if len(m.Data) > 256 {
		t.Errorf("beat is %d bytes, want <= 256: %s", len(m.Data), m.Data)
	}
	var generic map[string]any
	if err := json.Unmarshal(m.Data, &generic); err != nil {
		t.Fatalf("beat is not JSON: %v", err)
	}
	keys := []string{"v", "id", "host", "pid", "boot", "seq", "ts", "interval_ms", "status", "version", "labels"}
	for _, k := range keys {
		if _, ok := generic[k]; !ok {
			t.Errorf("key %q missing from %s", k, m.Data)
		}
	}
	if len(generic) != len(keys) {
		t.Errorf("beat has %d keys, want %d: %s", len(generic), len(keys), m.Data)
	}

	fake.WaitTickers(1)
	for seq := uint64(2); seq <= 4; seq++ {
		fake.Advance(time.Second)
		b, _ := nextBeat(t, beats)
		if b.Seq != seq || !b.TS.Equal(fake.Now()) {
			t.Fatalf("beat seq=%d ts=%v, want seq=%d ts=%v", b.Seq, b.TS, seq, fake.Now())
		}
	}
	if n.Seq() != 4 {
		t.Errorf("Seq() = %d, want 4", n.Seq())
	}
}

func TestProbe(t *testing.T) {
	url := startServer(t)
	client := connect(t, url)
	beats := subscribe(t, client, subjects.Beats())
	fake := clock.NewFake(epoch)
	n := start(t, connect(t, url), testConfig(fake))

	nextBeat(t, beats)
	fake.WaitTickers(1)
	fake.Advance(time.Second)
	last, _ := nextBeat(t, beats)

	reply, err := client.Request(subjects.Probe(n.ID()), nil, waitTimeout)
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	got, err := wire.DecodeProbeReply(reply.Data)
	if err != nil {
		t.Fatalf("decode probe reply %s: %v", reply.Data, err)
	}
	if got.ID != n.ID() || got.Boot != n.Boot() || got.Seq != last.Seq || got.Status != wire.StatusAlive {
		t.Errorf("probe reply id=%q boot=%q seq=%d status=%q, want %q %q %d alive",
			got.ID, got.Boot, got.Seq, got.Status, n.ID(), n.Boot(), last.Seq)
	}
}

func TestGoodbye(t *testing.T) {
	url := startServer(t)
	client := connect(t, url)
	beats := subscribe(t, client, subjects.Beats())
	fake := clock.NewFake(epoch)
	n := start(t, connect(t, url), testConfig(fake))
	nextBeat(t, beats)

	if err := n.stop(t); err != nil {
		t.Fatalf("Run returned %v, want nil", err)
	}
	b, _ := nextBeat(t, beats)
	if b.Status != wire.StatusLeaving || b.Seq != 2 {
		t.Errorf("goodbye status=%q seq=%d, want leaving 2", b.Status, b.Seq)
	}
	if _, err := client.Request(subjects.Probe(n.ID()), nil, waitTimeout); !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("probe after Run returned: err = %v, want %v", err, nats.ErrNoResponders)
	}
}

// TestGoodbyeNotSentWarns: a node stopped while it cannot reach NATS
// cannot say goodbye, so monitors will call it dead; it says so.
func TestGoodbyeNotSentWarns(t *testing.T) {
	url := startServer(t)
	px := startProxy(t, url)
	nc := connect(t, px.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(10*time.Millisecond))
	var buf syncio.Writer
	cfg := testConfig(clock.NewFake(epoch))
	cfg.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	n := start(t, nc, cfg)
	px.Block()
	eventually(t, "node connection to drop", func() bool { return nc.Status() != nats.CONNECTED })
	if err := n.stop(t); err != nil {
		t.Fatalf("Run returned %v, want nil", err)
	}
	if out := buf.String(); !strings.Contains(out, `level=WARN msg="goodbye not sent: not connected to NATS; monitors will report this node dead, not left"`) {
		t.Errorf("no warning about the lost goodbye; log:\n%s", out)
	}
	px.Unblock()
}

func TestDropBeat(t *testing.T) {
	url := startServer(t)
	client := connect(t, url)
	beats := subscribe(t, client, subjects.Beats())
	fake := clock.NewFake(epoch)
	cfg := testConfig(fake)
	cfg.DropBeat = func(seq uint64) bool { return seq == 2 || seq == 3 }
	n := start(t, connect(t, url), cfg)

	if b, _ := nextBeat(t, beats); b.Seq != 1 {
		t.Fatalf("first beat seq = %d", b.Seq)
	}
	fake.WaitTickers(1)
	for want := uint64(2); want <= 3; want++ {
		fake.Advance(time.Second)
		eventually(t, "beat to be dropped", func() bool { return n.Stats().Dropped == want-1 })
		reply, err := client.Request(subjects.Probe(n.ID()), nil, waitTimeout)
		if err != nil {
			t.Fatalf("probe while dropping: %v", err)
		}
		if got, err := wire.DecodeProbeReply(reply.Data); err != nil || got.Seq != want {
			t.Fatalf("probe reply seq = %d (err %v), want %d", got.Seq, err, want)
		}
	}
	fake.Advance(time.Second)
	if b, _ := nextBeat(t, beats); b.Seq != 4 {
		t.Errorf("beat after drops has seq %d, want 4 (dropped beats keep their seq)", b.Seq)
	}
	if st := n.Stats(); st.Dropped != 2 || st.Published != 2 {
		t.Errorf("Stats() = %+v, want 2 dropped, 2 published", st)
	}
}

// While the node's connection is down its beats are skipped, not buffered:
// after reconnecting, the subscriber sees one fresh beat, not a burst of
// replayed stale ones.
func TestReconnectNoStaleBurst(t *testing.T) {
	url := startServer(t)
	client := connect(t, url)
	beats := subscribe(t, client, subjects.Beats())
	px := startProxy(t, url)
	nc := connect(t, px.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(10*time.Millisecond),
		nats.ReconnectJitter(0, 0))
	fake := clock.NewFake(epoch)
	n := start(t, nc, testConfig(fake))

	nextBeat(t, beats)
	fake.WaitTickers(1)
	fake.Advance(time.Second)
	if b, _ := nextBeat(t, beats); b.Seq != 2 {
		t.Fatalf("seq = %d, want 2", b.Seq)
	}

	px.Block()
	eventually(t, "node connection to drop", func() bool { return nc.Status() != nats.CONNECTED })
	const missed = 5
	for i := uint64(1); i <= missed; i++ {
		fake.Advance(time.Second)
		eventually(t, "beat to be skipped", func() bool { return n.Stats().Skipped == i })
	}
	if got, err := nc.Buffered(); err != nil || got != 0 {
		t.Errorf("reconnect buffer holds %d bytes (err %v), want 0", got, err)
	}

	px.Unblock()
	b, _ := nextBeat(t, beats)
	if b.Seq != 2+missed+1 || b.Status != wire.StatusAlive {
		t.Fatalf("first beat after reconnect: seq=%d status=%q, want seq %d alive", b.Seq, b.Status, 2+missed+1)
	}
	if !b.TS.Equal(fake.Now()) {
		t.Errorf("reconnect beat ts = %v, want now %v", b.TS, fake.Now())
	}
	// Everything the node sent has now reached the subscriber; there must
	// be nothing else queued.
	if err := nc.Flush(); err != nil {
		t.Fatalf("flush node conn: %v", err)
	}
	if err := client.Flush(); err != nil {
		t.Fatalf("flush client: %v", err)
	}
	var extra []uint64
	for len(beats) > 0 {
		b, _ := nextBeat(t, beats)
		extra = append(extra, b.Seq)
	}
	if len(extra) > 0 {
		t.Errorf("burst after reconnect: extra beats with seqs %v", extra)
	}

	// The period restarts from the reconnect beat.
	fake.Advance(time.Second)
	if b, _ := nextBeat(t, beats); b.Seq != 2+missed+2 {
		t.Errorf("next beat seq = %d, want %d", b.Seq, 2+missed+2)
	}
}

// A node that reconnects within a tenth of an interval of its last beat
// (a connection reset and taken again at once, a failover) waits until
// that tenth has passed before its reconnect beat: monitors reject two
// beats closer than that, by arrival and by ts, as a flood, and would
// warn about a node doing nothing wrong.
func TestReconnectBeatNotAFlood(t *testing.T) {
	url := startServer(t)
	client := connect(t, url)
	beats := subscribe(t, client, subjects.Beats())
	px := startProxy(t, url)
	nc := connect(t, px.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(10*time.Millisecond),
		nats.ReconnectJitter(0, 0))
	fake := clock.NewFake(epoch)
	cfg := testConfig(fake)
	n := start(t, nc, cfg)
	first, _ := nextBeat(t, beats)
	gap := wire.MinBeatGap(cfg.Interval)

	fake.WaitTickers(1)
	fake.Advance(gap / 2)
	px.Block()
	eventually(t, "node connection to drop", func() bool { return nc.Status() != nats.CONNECTED })
	px.Unblock()
	eventually(t, "node connection back", nc.IsConnected)
	// Round trips on both connections: a beat the node sent on
	// reconnecting is on its way to the subscriber by now.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := client.Flush(); err != nil {
		t.Fatal(err)
	}
	fake.Advance(gap / 2)
	b, _ := nextBeat(t, beats)
	if b.Seq != first.Seq+1 || b.TS.Sub(first.TS) < gap {
		t.Fatalf("reconnect beat seq %d at +%v after seq %d, want seq %d at least %v later", b.Seq, b.TS.Sub(first.TS), first.Seq, first.Seq+1, gap)
	}
	// The node counts a beat once Publish returns, which may be after the
	// subscriber got it; an extra beat fails this wait or the seq check below.
	eventually(t, "two beats counted as published", func() bool { return n.Stats().Published == 2 })
	// The period restarts from the reconnect beat.
	fake.Advance(cfg.Interval)
	if b2, _ := nextBeat(t, beats); b2.Seq != b.Seq+1 || b2.TS.Sub(b.TS) != cfg.Interval {
		t.Fatalf("next beat seq %d at +%v, want %d at +%v", b2.Seq, b2.TS.Sub(b.TS), b.Seq+1, cfg.Interval)
	}
}

func TestRunFailsOnClosedConnection(t *testing.T) {
	url := startServer(t)
	fake := clock.NewFake(epoch)

	t.Run("closed before Run", func(t *testing.T) {
		nc := connect(t, url)
		nc.Close()
		n := start(t, nc, testConfig(fake))
		if err := n.wait(t); !errors.Is(err, node.ErrConnClosed) || !errors.Is(err, nats.ErrConnectionClosed) {
			t.Fatalf("Run on a closed connection = %v, want %v, which is also %v", err, node.ErrConnClosed, nats.ErrConnectionClosed)
		}
	})
	t.Run("closed while running", func(t *testing.T) {
		nc := connect(t, url)
		beats := subscribe(t, connect(t, url), subjects.Beats())
		n := start(t, nc, testConfig(fake))
		nextBeat(t, beats)
		nc.Close()
		if err := n.wait(t); !errors.Is(err, node.ErrConnClosed) {
			t.Fatalf("Run = %v, want %v", err, node.ErrConnClosed)
		}
	})
}

// TestRunCancelledBeforeStart: a node whose context is done before Run
// announces nothing, so monitors never see a first beat and a goodbye from
// a node that never ran.
func TestRunCancelledBeforeStart(t *testing.T) {
	url := startServer(t)
	beats := subscribe(t, connect(t, url), subjects.Beats())
	nc := connect(t, url)
	n, err := node.New(nc, testConfig(clock.NewFake(epoch)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := n.Run(ctx); err != nil {
		t.Fatalf("Run with a done context = %v, want nil", err)
	}
	if st := n.Stats(); st.Published != 0 {
		t.Errorf("published %d beats, want none", st.Published)
	}
	// One connection's messages arrive in order: if the marker is the
	// first thing the subscriber gets, the node sent nothing.
	if err := nc.Publish(subjects.Beat("marker"), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-beats:
		if m.Subject != subjects.Beat("marker") {
			t.Errorf("a node cancelled before Run sent %s", m.Data)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the marker did not arrive")
	}
}

// TestRunTwice: a second Run returns ErrRunTwice, both while the first
// runs and after it has returned.
func TestRunTwice(t *testing.T) {
	url := startServer(t)
	beats := subscribe(t, connect(t, url), subjects.Beats())
	n := start(t, connect(t, url), testConfig(clock.NewFake(epoch)))
	nextBeat(t, beats) // the first Run is under way
	// A cancelled ctx, so that a node that ran twice returns rather than hangs.
	done, cancel := context.WithCancel(t.Context())
	cancel()
	if err := n.Run(done); !errors.Is(err, node.ErrRunTwice) {
		t.Fatalf("second Run while running = %v, want ErrRunTwice", err)
	}
	if err := n.stop(t); err != nil {
		t.Fatal(err)
	}
	if err := n.Run(done); !errors.Is(err, node.ErrRunTwice) {
		t.Fatalf("second Run after the first returned = %v, want ErrRunTwice", err)
	}
}

// With the real clock and jitter, beats keep coming at roughly Interval.
func TestRealClockJitter(t *testing.T) {
	url := startServer(t)
	beats := subscribe(t, connect(t, url), subjects.Beats())
	cfg := node.DefaultConfig()
	cfg.Interval = node.MinInterval
	cfg.Jitter = node.MaxJitter
	start(t, connect(t, url), cfg)
	var seqs []uint64
	for range 3 {
		b, _ := nextBeat(t, beats)
		seqs = append(seqs, b.Seq)
	}
	if !slices.Equal(seqs, []uint64{1, 2, 3}) {
		t.Errorf("seqs = %v, want [1 2 3]", seqs)
	}
}
