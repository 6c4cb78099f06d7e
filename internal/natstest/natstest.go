// Package natstest starts real embedded nats-servers for tests. There are
// no mocks here: every helper runs a genuine nats-server in-process on a
// random port and registers its shutdown with t.Cleanup.
package natstest

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/embedded"
)

// Timeout bounds every wait in this package: readiness, routes, interest.
const Timeout = 10 * time.Second

// Start starts a server on a random client port, applying mods to its
// Config in order, and shuts it down when the test ends.
func Start(t testing.TB, mods ...func(*embedded.Config)) *embedded.Server {
	t.Helper()
	cfg := embedded.DefaultConfig()
	cfg.Port = embedded.RandomPort
	cfg.ReadyTimeout = Timeout
	for _, m := range mods {
		m(&cfg)
	}
	s, err := embedded.New(cfg)
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	t.Cleanup(s.Shutdown)
	if err := s.Start(); err != nil {
		t.Fatalf("natstest: %v", err)
	}
	return s
}

// StartCluster starts n clustered servers on random client and cluster
// ports and waits until each is routed to all n-1 others. Server 0 is the
// seed the others route to; gossip completes the mesh. mods are applied to
// every server's Config after the cluster settings.
func StartCluster(t testing.TB, n int, mods ...func(*embedded.Config)) []*embedded.Server {
	t.Helper()
	if n < 1 {
		t.Fatalf("natstest: StartCluster needs n >= 1, got %d", n)
	}
	name := "natstest-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	servers := make([]*embedded.Server, n)
	for i := range servers {
		var routes []string
		if i > 0 {
			routes = []string{servers[0].ClusterURL()}
		}
		cl := func(c *embedded.Config) {
			c.Name = name + "-" + strconv.Itoa(i)
			c.Cluster = embedded.ClusterConfig{Name: name, Port: embedded.RandomPort, Routes: routes}
		}
		servers[i] = Start(t, append([]func(*embedded.Config){cl}, mods...)...)
	}
	for i, s := range servers {
		if err := s.WaitRoutes(n-1, Timeout); err != nil {
			t.Fatalf("natstest: server %d: %v", i, err)
		}
	}
	return servers
}

// StartJetStreamCluster starts n clustered servers with JetStream, each
// with its own store, and waits for the routes. Unlike StartCluster, every
// server is given routes to all n cluster ports, which a JetStream cluster
// requires; so the cluster ports are picked up front, from ports the
// kernel hands out. Each port stays held by a listener of ours until just
// before its server binds it, so another process can take it only in that
// instant (and the test then fails with the bind error). mods are applied
// last.
func StartJetStreamCluster(t testing.TB, n int, mods ...func(*embedded.Config)) []*embedded.Server {
	t.Helper()
	if n < 1 {
		t.Fatalf("natstest: StartJetStreamCluster needs n >= 1, got %d", n)
	}
	ports := make([]int, n)
	routes := make([]string, n)
	held := make([]net.Listener, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("natstest: pick a cluster port: %v", err)
		}
		held[i] = ln
		t.Cleanup(func() { ln.Close() })
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		routes[i] = "nats-route://127.0.0.1:" + strconv.Itoa(ports[i])
	}
	name := "natstest-js-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	servers := make([]*embedded.Server, n)
	for i := range servers {
		cl := func(c *embedded.Config) {
			c.Name = name + "-" + strconv.Itoa(i)
			c.JetStream = true
			c.StoreDir = t.TempDir()
			c.Cluster = embedded.ClusterConfig{Name: name, Host: "127.0.0.1", Port: ports[i], Routes: routes}
		}
		held[i].Close()
		servers[i] = Start(t, append([]func(*embedded.Config){cl}, mods...)...)
	}
	for i, s := range servers {
		if err := s.WaitRoutes(n-1, Timeout); err != nil {
			t.Fatalf("natstest: server %d: %v", i, err)
		}
	}
	return servers
}

// Connect connects to url with test-friendly options (the test name as
// the connection name, a 50ms reconnect wait and unlimited reconnects),
// followed by opts, which win. The connection is closed when the test ends.
func Connect(t testing.TB, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	all := append([]nats.Option{
		nats.Name(t.Name()),
		nats.ReconnectWait(50 * time.Millisecond),
		nats.MaxReconnects(-1),
	}, opts...)
	nc, err := nats.Connect(url, all...)
	if err != nil {
		t.Fatalf("natstest: connect %q: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// ConnectServer connects to s whether it listens on TCP or is in-process
// only (DontListen), like Connect.
func ConnectServer(t testing.TB, s *embedded.Server, opts ...nats.Option) *nats.Conn {
	t.Helper()
	return Connect(t, s.ClientURL(), append(s.ConnectOptions(), opts...)...)
}

// WaitInterest waits until s knows of a subscriber for subject in the
// account of clients without credentials (s.ClientAccount()), local or
// across a route. Interest crosses routes
// asynchronously, so a test that subscribes on one server and publishes
// on another must wait for it or the message may be dropped.
func WaitInterest(t testing.TB, s *embedded.Server, subject string) {
	t.Helper()
	acc, err := s.NATS().LookupAccount(s.ClientAccount())
	if err != nil {
		t.Fatalf("natstest: account %q on %s: %v", s.ClientAccount(), s.NATS().Name(), err)
	}
	deadline := time.NewTimer(Timeout)
	defer deadline.Stop()
	// nats-server offers no interest event to wait on, so poll.
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !acc.SubscriptionInterest(subject) {
		select {
		case <-deadline.C:
			t.Fatalf("natstest: no interest in %q on %s after %s", subject, s.NATS().Name(), Timeout)
		case <-tick.C:
		}
	}
}
