package embedded_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/wire"
)

// nextAdvisory returns the next advisory on ch, failing the test after
// wait.
func nextAdvisory(t *testing.T, ch <-chan *nats.Msg) wire.DisconnectAdvisory {
	t.Helper()
	select {
	case m := <-ch:
		a, err := wire.DecodeDisconnectAdvisory(m.Data)
		if err != nil {
			t.Fatalf("advisory on %s: %v\n%s", m.Subject, err, m.Data)
		}
		return a
	case <-time.After(wait):
		t.Fatal("no DISCONNECT advisory")
	}
	return wire.DisconnectAdvisory{}
}

// TestMeshAccount: a client without credentials lands in the mesh
// account, works as on a server without accounts (JetStream included),
// and sees the DISCONNECT advisories of its own account's clients.
func TestMeshAccount(t *testing.T) {
	cfg := randomPortConfig()
	cfg.MeshAccount, cfg.JetStream = embedded.DefaultMeshAccount, true
	s := start(t, cfg)
	if got := s.ClientAccount(); got != embedded.DefaultMeshAccount {
		t.Fatalf("ClientAccount = %q", got)
	}

	nc := connect(t, s)
	advisories := make(chan *nats.Msg, 16)
	if _, err := nc.ChanSubscribe(wire.DisconnectAdvisories, advisories); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	other := connect(t, s)
	roundTrip(t, nc, other, s, "hbmesh.mesh")

	// JetStream is on for the mesh account.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "mesh"}); err != nil {
		t.Fatalf("JetStream in the mesh account: %v", err)
	}

	gone, err := nats.Connect(s.ClientURL(), nats.Name("hbmesh node web-1 prefix=hb reconnect=350ms"))
	if err != nil {
		t.Fatal(err)
	}
	gone.Close()
	a := nextAdvisory(t, advisories)
	// The server reports a client's close as "Client Closed" or, when its
	// read of the closed socket fails first, "Read Error".
	if a.Client.Name != "hbmesh node web-1 prefix=hb reconnect=350ms" || a.Client.Account != embedded.DefaultMeshAccount ||
		(a.Reason != "Client Closed" && a.Reason != "Read Error") {
		t.Fatalf("advisory %+v", a)
	}

	// Credentials are refused: only clients without them are the mesh's.
	if c, err := nats.Connect(s.ClientURL(), nats.UserInfo("someone", "secret"), nats.MaxReconnects(0)); err == nil {
		c.Close()
		t.Fatal("a client with unknown credentials connected")
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("connect with unknown credentials: %v, want an authorization error", err)
	}
}

// TestMeshAccountCluster: the advisory of a client of one server reaches
// a subscriber on another.
func TestMeshAccountCluster(t *testing.T) {
	servers := natstest.StartCluster(t, 3, func(c *embedded.Config) { c.MeshAccount = embedded.DefaultMeshAccount })
	nc := connect(t, servers[0])
	advisories := make(chan *nats.Msg, 16)
	if _, err := nc.ChanSubscribe(wire.DisconnectAdvisories, advisories); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	// The subscription in the mesh account makes the system account on
	// server 0 subscribe to the exported subject; that interest crosses
	// the route to server 2 asynchronously.
	natstest.Eventually(t, "interest in the advisories on server 2", func() bool {
		sys := servers[2].NATS().SystemAccount()
		return sys != nil && sys.SubscriptionInterest(wire.DisconnectAdvisorySubject(embedded.DefaultMeshAccount))
	})
	for i := range 3 {
		name := fmt.Sprintf("hbmesh node n%d prefix=hb reconnect=350ms", i)
		c, err := nats.Connect(servers[2].ClientURL(), nats.Name(name), nats.NoReconnect())
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		if a := nextAdvisory(t, advisories); a.Client.Name != name || a.Server.Name != servers[2].NATS().Name() {
			t.Fatalf("advisory %+v, want %q from %s", a, name, servers[2].NATS().Name())
		}
	}
}
