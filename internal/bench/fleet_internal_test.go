package bench

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/internal/natstest"
)

// TestFleetLateKill: a fleet loop that runs late (a loaded machine) and
// finds both a victim's beat and, after it, its kill in the past kills it
// and sends nothing more for it: its connection is closed, as a killed
// process's is, and publishing on it is not an error of the bench.
func TestFleetLateKill(t *testing.T) {
	srv := natstest.Start(t)
	own := natstest.Connect(t, srv.ClientURL())
	f := newFleet(natstest.Connect(t, srv.ClientURL()), "late-", 1, time.Second)
	f.conns = []*nats.Conn{own}
	start := time.Now().Add(-500 * time.Millisecond) // its beat was due at start
	f.killAt[0] = start.Add(100 * time.Millisecond)  // and its kill after that
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // one pass
	if err := f.run(ctx, start); err != nil {
		t.Fatalf("run: %v", err)
	}
	if !own.IsClosed() || f.killed[0].IsZero() || f.sent != 0 {
		t.Fatalf("closed %v, killed at %v, %d beats sent; want closed, killed, none sent", own.IsClosed(), f.killed[0], f.sent)
	}
}
