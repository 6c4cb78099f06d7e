package status_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/internal/discovery"
	"github.com/hbmesh/hbmesh/internal/meshtest"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/internal/status"
	"github.com/hbmesh/hbmesh/monitor"
)

// TestExpectWaitsForSlowMonitor: a real monitor answers at once and a
// second one, which sees web-1 dead, 400 ms after each request. Without --expect the
// gathering stops a quiet period (250 ms here) after the first, so the
// second's verdict is missed and --fail-on dead passes: from the
// replies alone a late monitor looks like no monitor. With --expect 2
// the gathering waits for it. With --expect 3 the wait runs out, the
// report warns, and every --fail-on fails.
func TestExpectWaitsForSlowMonitor(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.ClientURL()
	meshtest.StartMonitor(t, url, "mon-a")
	meshtest.StartNode(t, url, "web-1", fast)
	nc := natstest.Connect(t, url)
	natstest.Eventually(t, "mon-a sees web-1", func() bool {
		r, err := status.Gather(context.Background(), nc, status.Options{Wait: time.Second})
		return err == nil && len(r.Peers) == 1 && r.Peers[0].State == "alive"
	})
	slow := natstest.Connect(t, url)
	respond(t, slow, func(endpoint, _ string) []*nats.Msg {
		time.Sleep(400 * time.Millisecond) // a monitor slow to answer
		if endpoint == discovery.EndpointPeers {
			return []*nats.Msg{jsonMsg(t, discovery.PeersResponse{Type: discovery.PeersResponseType, Monitor: "mon-slow", Instance: "SLOW", Total: 1,
				Peers: []monitor.PeerJSON{{ID: "web-1", Host: "web-1.example", State: monitor.StateDead}}})}
		}
		return []*nats.Msg{jsonMsg(t, discovery.StatusResponse{Type: discovery.StatusResponseType, Instance: "SLOW",
			Host: "slow", PID: 7, StatusJSON: monitor.StatusJSON{Monitor: "mon-slow", Ready: true, Connected: true, Peers: 1}})}
	})
	run := func(expect int) (string, error) {
		t.Helper()
		var stdout bytes.Buffer
		err := status.Run(context.Background(), nc, status.Options{Wait: 2 * time.Second, FailOn: "dead", Expect: expect}, &stdout)
		return stdout.String(), err
	}

	out, err := run(0)
	if err != nil || strings.Contains(out, "mon-slow") {
		t.Fatalf("without --expect: err %v; want the slow monitor missed (else this test shows nothing):\n%s", err, out)
	}
	out, err = run(2)
	if !errors.Is(err, status.ErrFailOn) || !strings.Contains(err.Error(), "1 peer dead") || !strings.Contains(out, "mon-slow") {
		t.Fatalf("--expect 2: err %v, want web-1 dead from the slow monitor:\n%s", err, out)
	}
	out, err = run(3)
	if !errors.Is(err, status.ErrFailOn) || !strings.Contains(err.Error(), "2 of 3 expected monitors answered") ||
		!strings.Contains(out, "2 of 3 expected monitors answered both requests") {
		t.Fatalf("--expect 3: err %v, want the shortfall warned about and failed:\n%s", err, out)
	}
	// The JSON says it too.
	var js bytes.Buffer
	if err := status.Run(context.Background(), nc, status.Options{Wait: 2 * time.Second, Expect: 3, JSON: true}, &js); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(js.String(), `"expected":3`) {
		t.Fatalf("--json lacks \"expected\": %s", js.String())
	}
}
