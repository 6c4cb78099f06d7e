package main

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/internal/syncio"
)

// TestChaosKillLogsNoDisconnect: the demo's chaos kill drops a node's TCP
// connection under it, then closes the connection. That disconnect is
// the point of the kill, not a fault, so it must not print a "NATS
// disconnected" warning in the middle of the demo's output.
func TestChaosKillLogsNoDisconnect(t *testing.T) {
	srv := natstest.Start(t)
	l, err := newLink(strings.TrimPrefix(srv.ClientURL(), "nats://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.close)
	var logs syncio.Writer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cn, err := (&connFlags{Server: l.URL(), Timeout: 5 * time.Second}).dial(context.Background(), "chaos victim", log)
	if err != nil {
		t.Fatal(err)
	}
	cn.expectClose()
	l.close()
	// Let nats.go see the dead connection before it is closed, as it may
	// in the demo: the disconnect is then reported with an error (EOF).
	waitFor(t, 10*time.Second, "the client to notice", func() bool { return !cn.IsConnected() })
	cn.close() // returns once the disconnect callback has run
	if got := logs.String(); strings.Contains(got, "NATS disconnected") {
		t.Errorf("a deliberate kill logged a disconnect:\n%s", got)
	}
}

// TestStopLogsNoDisconnect: a node stopped with SIGTERM says so ("node
// stopped"); its own closing of the connection is not a second piece of
// news.
func TestStopLogsNoDisconnect(t *testing.T) {
	srv := natstest.Start(t)
	nd := start(t, "node", "-s", srv.ClientURL(), "--id", "n1", "--interval", "100ms")
	natstest.WaitInterest(t, srv, "hb.n1.probe")
	if code := nd.stop(t); code != exitOK {
		t.Fatalf("node exit %d; stderr:\n%s", code, nd.stderr)
	}
	got := nd.stderr.String()
	if !strings.Contains(got, `msg="node stopped"`) {
		t.Fatalf("no node stopped line:\n%s", got)
	}
	if strings.Contains(got, "NATS disconnected") {
		t.Errorf("a clean stop logged a disconnect:\n%s", got)
	}
}

// TestConnectRefused: with nothing listening at --server, every command
// that connects fails at once with one line that says the connection was
// refused (nats.go reports only "no servers available for connection").
func TestConnectRefused(t *testing.T) {
	url := "nats://127.0.0.1:" + strconv.Itoa(freePort(t))
	for _, args := range [][]string{
		{"node", "-s", url},
		{"monitor", "-s", url},
		{"status", "-s", url},
		{"probe", "web-1", "-s", url},
	} {
		t.Run(args[0], func(t *testing.T) {
			code, _, stderr := runSync(t, nil, args...)
			want := "hbmesh " + args[0] + ": connect " + url + ": nats: no servers available for connection (connection refused: is a NATS server listening there?)\n"
			if code != exitFailure || stderr != want {
				t.Errorf("exit %d, stderr %q; want exit %d, stderr %q", code, stderr, exitFailure, want)
			}
		})
	}
}
