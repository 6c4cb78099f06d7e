package status_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

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

// startNode runs a node beating every 100ms until the test ends. The
// returned kill closes the node's connection so it vanishes without a
// goodbye, as a crashed process would.
func startNode(t *testing.T, url, id string) (kill func()) {
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
	var once sync.Once
	var runErr error
	stop := func(how func()) error {
		once.Do(func() { how(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(cancel); err != nil && !errors.Is(err, node.ErrConnClosed) {
			t.Errorf("node %s: %v", id, err)
		}
		cancel()
	})
	return func() {
		if err := stop(nc.Close); !errors.Is(err, node.ErrConnClosed) {
			t.Errorf("killed node %s: Run returned %v", id, err)
		}
	}
}
