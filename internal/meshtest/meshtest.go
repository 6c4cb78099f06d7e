// Package meshtest starts real monitors and nodes for tests, on top of the
// real servers of internal/natstest. Every helper stops what it started
// when the test ends and checks that it returned cleanly.
package meshtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/internal/discovery"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/node"
)

// monitors numbers the monitors StartMonitor registers.
var monitors atomic.Int64

// StartMonitor runs a monitor with id on its own connection to url,
// applying mods to its Config, waits until it is ready, and registers it
// as the hbmesh-monitor service (version v1.2.3). Both stop when the test
// ends.
func StartMonitor(t testing.TB, url, id string, mods ...func(*monitor.Config)) (*monitor.Monitor, *discovery.Service) {
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
	natstest.Run(t, "monitor "+id, m.Run)
	natstest.Eventually(t, "monitor "+id+" ready", func() bool { return m.Ready() == nil })
	// Each monitor claims a host and pid of its own, as separate
	// processes would.
	n := int(monitors.Add(1))
	svc, err := discovery.Register(nc, m, discovery.Config{Version: "v1.2.3", Host: fmt.Sprintf("%s.host%d", id, n), PID: 1000 + n})
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

// StartNode runs node id (host <id>.example, version 1.0.0) beating every
// interval on its own connection to url until the test ends. The returned
// kill closes the node's connection so it vanishes without a goodbye, as a
// crashed process would.
func StartNode(t testing.TB, url, id string, interval time.Duration) (kill func()) {
	t.Helper()
	nc := natstest.Connect(t, url)
	cfg := node.DefaultConfig()
	cfg.ID, cfg.Host, cfg.Interval, cfg.Version = id, id+".example", interval, "1.0.0"
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
