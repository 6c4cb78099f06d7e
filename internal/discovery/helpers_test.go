package discovery_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/hbmesh/hbmesh/internal/discovery"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/node"
	"github.com/hbmesh/hbmesh/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	fast     = 100 * time.Millisecond // node beat interval
	deadline = 10 * time.Second       // bound on any wait; passing tests never reach it
)

var subjects = wire.MustSubjects(wire.DefaultPrefix)

// startMonitor runs a monitor on its own connection, registers its
// service, and stops both when the test ends, waiting for Run to return.
func startMonitor(t *testing.T, url, id string, mods ...func(*monitor.Config)) (*monitor.Monitor, *discovery.Service) {
	t.Helper()
	nc := natstest.Connect(t, url)
	cfg := monitor.DefaultConfig()
	cfg.ID = id
	for _, f := range mods {
		f(&cfg)
	}
	m, err := monitor.New(nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("monitor %s: %v", id, err)
		}
	})
	natstest.Eventually(t, "monitor "+id+" ready", func() bool { return m.Ready() == nil })
	svc, err := discovery.Register(nc, m, discovery.Config{Version: "v1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := svc.Stop(); err != nil {
			t.Errorf("stop service %s: %v", id, err)
		}
	})
	return m, svc
}

// startNode runs a node beating every 100ms until the test ends.
func startNode(t *testing.T, url, id string) {
	t.Helper()
	nc := natstest.Connect(t, url)
	cfg := node.DefaultConfig()
	cfg.ID, cfg.Host, cfg.Interval, cfg.Version = id, id+".example", fast, "1.0.0"
	n, err := node.New(nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node %s: %v", id, err)
		}
	})
}

// requestMany publishes one request to subj and returns the first want
// replies, failing the test if fewer arrive within deadline.
func requestMany(t *testing.T, nc *nats.Conn, subj string, body []byte, want int) []*nats.Msg {
	t.Helper()
	inbox := nc.NewInbox()
	ch := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe(inbox, ch)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest(subj, inbox, body); err != nil {
		t.Fatal(err)
	}
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	var out []*nats.Msg
	for len(out) < want {
		select {
		case m := <-ch:
			out = append(out, m)
		case <-timer.C:
			t.Fatalf("%s: %d of %d replies within %v", subj, len(out), want, deadline)
		}
	}
	return out
}

func decode[T any](t *testing.T, m *nats.Msg) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(m.Data, &v); err != nil {
		t.Fatalf("decode %s reply %q: %v", m.Subject, m.Data, err)
	}
	return v
}
