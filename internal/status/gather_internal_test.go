package status

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/internal/discovery"
	"github.com/hbmesh/hbmesh/monitor"
)

// reply is one status or peers reply of monitor vm.
type reply struct {
	instance string
	peers    bool
	ready    bool          // status
	state    monitor.State // of web-1, peers
}

func (r reply) msg(t *testing.T) *nats.Msg {
	t.Helper()
	var v any = discovery.StatusResponse{Type: discovery.StatusResponseType, Monitor: "vm", Instance: r.instance, Ready: r.ready, Peers: 1}
	if r.peers {
		v = discovery.PeersResponse{
			Type: discovery.PeersResponseType, Monitor: "vm", Instance: r.instance, Total: 1,
			Peers: []discovery.Peer{{ID: "web-1", State: r.state}},
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return &nats.Msg{Data: b}
}

// TestSharedIDRowsDoNotMix: when two instances answer under one id, the
// row and column show the first instance's replies only; replies without
// an instance (older monitors) are merged as before and only counted.
func TestSharedIDRowsDoNotMix(t *testing.T) {
	for _, tc := range []struct {
		name     string
		replies  []reply
		instance string
		ids      []string
		ready    bool
		web1     string
		warning  string
	}{
		{
			name: "instances",
			replies: []reply{
				{instance: "A", peers: true, state: monitor.StateAlive},
				{instance: "B", ready: false},
				{instance: "B", peers: true, state: monitor.StateDead},
				{instance: "A", ready: true},
			},
			instance: "A", ids: []string{"A", "B"}, ready: true, web1: "alive",
			warning: `2 monitors answer as "vm" (instances A, B): give each its own --id`,
		},
		{
			name: "no instances",
			replies: []reply{
				{peers: true, state: monitor.StateAlive},
				{ready: false},
				{peers: true, state: monitor.StateDead},
				{ready: true},
			},
			ready: true, web1: "dead", // the last reply of each kind wins
			warning: `2 monitors answer as "vm": give each its own --id`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGathering()
			for _, r := range tc.replies {
				g.add(r.peers, r.msg(t))
			}
			rep := g.report(time.Unix(0, 0), "hb.monitor.v1.peers")
			if len(rep.Monitors) != 1 {
				t.Fatalf("monitors = %+v", rep.Monitors)
			}
			m := rep.Monitors[0]
			if m.Instances != 2 || m.Instance != tc.instance || !slices.Equal(m.InstanceIDs, tc.ids) || m.Ready != tc.ready {
				t.Errorf("monitor = %+v", m)
			}
			if len(rep.Peers) != 1 || rep.Peers[0].States["vm"] != tc.web1 {
				t.Errorf("peers = %+v, want web-1 %s", rep.Peers, tc.web1)
			}
			if len(rep.Warnings) != 1 || rep.Warnings[0] != tc.warning {
				t.Errorf("warnings = %q, want %q", rep.Warnings, tc.warning)
			}
		})
	}
}
