package natstest_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
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
