package natstest_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/internal/natstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestStartAndConnect(t *testing.T) {
	s := natstest.Start(t, func(c *embedded.Config) { c.Name = "single" })
	if got := s.NATS().Name(); got != "single" {
		t.Fatalf("mods not applied: name %q", got)
	}
	nc := natstest.Connect(t, s.ClientURL())
	if got := nc.Opts.Name; got != t.Name() {
		t.Fatalf("connection name %q, want %q", got, t.Name())
	}
	if nc.Opts.MaxReconnect != -1 || nc.Opts.ReconnectWait != 50*time.Millisecond {
		t.Fatalf("reconnect options %d/%s", nc.Opts.MaxReconnect, nc.Opts.ReconnectWait)
	}
	// Caller options win over the defaults.
	nc2 := natstest.Connect(t, s.ClientURL(), nats.Name("mine"))
	if nc2.Opts.Name != "mine" {
		t.Fatalf("connection name %q, want mine", nc2.Opts.Name)
	}
	exchange(t, nc, nc2, s, "natstest.single")
}

func TestConnectServerInProcess(t *testing.T) {
	s := natstest.Start(t, func(c *embedded.Config) { c.DontListen = true })
	nc := natstest.ConnectServer(t, s)
	exchange(t, nc, nc, s, "natstest.inproc")
}

func TestStartCluster(t *testing.T) {
	servers := natstest.StartCluster(t, 3)
	for i, s := range servers {
		if n := s.NATS().NumRemotes(); n != 2 {
			t.Fatalf("server %d routed to %d peers, want 2", i, n)
		}
	}
	sub := natstest.ConnectServer(t, servers[0])
	pub := natstest.ConnectServer(t, servers[2])
	exchange(t, sub, pub, servers[2], "natstest.cluster")
}

func TestStartClusterOfOne(t *testing.T) {
	servers := natstest.StartCluster(t, 1)
	if len(servers) != 1 || servers[0].ClusterURL() == "" {
		t.Fatalf("got %d servers, cluster URL %q", len(servers), servers[0].ClusterURL())
	}
}

// TestStartJetStreamCluster: the three servers form a JetStream cluster
// that elects a meta leader and places a stream with three replicas.
func TestStartJetStreamCluster(t *testing.T) {
	servers := natstest.StartJetStreamCluster(t, 3)
	for i, s := range servers {
		if n := s.NATS().NumRemotes(); n != 2 {
			t.Fatalf("server %d routed to %d peers, want 2", i, n)
		}
	}
	js, err := jetstream.New(natstest.ConnectServer(t, servers[1]))
	if err != nil {
		t.Fatal(err)
	}
	var created jetstream.Stream
	natstest.Eventually(t, "a stream with 3 replicas", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		created, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3})
		return err == nil
	})
	if r := created.CachedInfo().Config.Replicas; r != 3 {
		t.Fatalf("stream has %d replicas, want 3", r)
	}
}

// exchange subscribes on sub, waits until pubServer sees the interest,
// publishes on pub and waits for the message.
func exchange(t *testing.T, sub, pub *nats.Conn, pubServer *embedded.Server, subject string) {
	t.Helper()
	s, err := sub.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	natstest.WaitInterest(t, pubServer, subject)
	if err := pub.Publish(subject, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.NextMsg(natstest.Timeout); err != nil {
		t.Fatalf("receive on %q: %v", subject, err)
	}
}
