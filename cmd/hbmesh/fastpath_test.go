package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/internal/faultproxy"
	"github.com/hbmesh/hbmesh/monitor"
)

// TestFastPath runs hbmesh server (which sets up the mesh account), a
// monitor on it and a node that reaches it through a proxy, then closes
// the proxy: the node's connection ends without a goodbye and cannot come
// back. The node beats every hour, so only the crash fast path can call
// it dead while the test runs.
func TestFastPath(t *testing.T) {
	port := freePort(t)
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	srv := start(t, "server", "-a", "127.0.0.1", "-p", strconv.Itoa(port))
	waitFor(t, 10*time.Second, "server ready", func() bool { return strings.Contains(srv.stderr.String(), "NATS server ready") })
	mon := start(t, "monitor", "-s", url, "--json", "--no-memory", "--no-publish-events")
	waitFor(t, 10*time.Second, "the fast-path report", func() bool { return strings.Contains(mon.stderr.String(), "crash fast path") })
	if !strings.Contains(mon.stderr.String(), "crash fast path on") {
		t.Fatalf("the monitor says the fast path is not on:\n%s", mon.stderr)
	}
	px, err := faultproxy.New("127.0.0.1:0", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	start(t, "node", "-s", px.URL(), "--id", "far", "--interval", "1h")
	waitFor(t, 10*time.Second, "far alive", func() bool { return hasEvent(jsonEvents(t, mon.stdout.String()), "far", "alive", "") })
	px.Close()
	defer func() {
		if t.Failed() {
			t.Logf("monitor stdout:\n%s\nstderr:\n%s", mon.stdout, mon.stderr)
		}
	}()
	waitFor(t, 10*time.Second, "far dead", func() bool {
		if hasEvent(jsonEvents(t, mon.stdout.String()), "far", "dead", "alive") {
			return true
		}
		return false
	})
	for _, ev := range jsonEvents(t, mon.stdout.String()) {
		if ev.ID == "far" && ev.State == monitor.StateDead && ev.Reason != monitor.ReasonDisconnected {
			t.Fatalf("dead event %+v, want reason disconnected", ev)
		}
	}
}

// TestFastPathOffIsSaid: a monitor on a server whose clients are in the
// global account says at start that the fast path is off, and why.
func TestFastPathOffIsSaid(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "plain.conf")
	if err := os.WriteFile(conf, []byte("# no accounts: the global account\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	srv := start(t, "server", "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-c", conf)
	waitFor(t, 10*time.Second, "server ready", func() bool { return strings.Contains(srv.stderr.String(), "NATS server ready") })
	mon := start(t, "monitor", "-s", "nats://127.0.0.1:"+strconv.Itoa(port), "--no-memory")
	waitFor(t, 10*time.Second, "the fast-path report", func() bool { return strings.Contains(mon.stderr.String(), "crash fast path") })
	log := mon.stderr.String()
	if !strings.Contains(log, "crash fast path off") || !strings.Contains(log, "global account") {
		t.Fatalf("the monitor does not say the fast path is off, and why:\n%s", log)
	}
	if n := strings.Count(log, "crash fast path"); n != 1 {
		t.Fatalf("said %d times, want once:\n%s", n, log)
	}
}
