package status

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/internal/discovery"
	"github.com/hbmesh/hbmesh/internal/meshtest"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/wire"
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
			Peers: []monitor.PeerJSON{{ID: "web-1", State: r.state}},
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return &nats.Msg{Data: b}
}

// TestSharedIDRowsDoNotMix: when two instances answer under one id, the
// row and column show one instance's replies only (the lowest instance
// id), and the other's are kept apart, in Others and SharedStates, where
// --fail-on counts them. Replies that instance ids cannot tell apart,
// because they have none (older monitors) or repeat one (a forger can
// send any), are kept apart all the same: each status reply is paired
// with one peers reply, in the order of their content. Whatever order
// the replies come in, the report is the same.
func TestSharedIDRowsDoNotMix(t *testing.T) {
	for _, tc := range []struct {
		name     string
		replies  []reply
		instance string
		ids      []string
		ready    bool
		web1     string
		other    Instance
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
			other:   Instance{ID: "B", Status: true, Peers: 1, PeersAnswered: true},
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
			ready: false, web1: "alive",
			other:   Instance{Status: true, Ready: true, Peers: 1, PeersAnswered: true},
			warning: `2 monitors answer as "vm": give each its own --id`,
		},
		{
			// Paired by content: "ready":false before true, "alive"
			// before "dead", whichever came first.
			name: "one instance id twice",
			replies: []reply{
				{instance: "A", ready: true},
				{instance: "A", peers: true, state: monitor.StateAlive},
				{instance: "A", peers: true, state: monitor.StateDead},
				{instance: "A", ready: false},
			},
			instance: "A", ids: []string{"A"}, ready: false, web1: "alive",
			other:   Instance{ID: "A", Status: true, Ready: true, Peers: 1, PeersAnswered: true},
			warning: `2 monitors answer as "vm": give each its own --id`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGathering()
			for _, r := range tc.replies {
				g.add(r.peers, r.msg(t))
			}
			rep := g.report(time.Unix(0, 0), "hb.monitor.v1.peers")
			for _, order := range [][]int{{3, 2, 1, 0}, {1, 3, 0, 2}, {2, 0, 3, 1}} {
				g := newGathering()
				for _, i := range order {
					g.add(tc.replies[i].peers, tc.replies[i].msg(t))
				}
				if other := g.report(time.Unix(0, 0), "hb.monitor.v1.peers"); !reflect.DeepEqual(other, rep) {
					t.Errorf("replies in order %v: %+v\nwant, as in order 0 1 2 3: %+v", order, other, rep)
				}
			}
			if len(rep.Monitors) != 1 {
				t.Fatalf("monitors = %+v", rep.Monitors)
			}
			m := rep.Monitors[0]
			if m.Instances != 2 || m.Instance != tc.instance || !slices.Equal(m.InstanceIDs, tc.ids) || m.Ready != tc.ready {
				t.Errorf("monitor = %+v", m)
			}
			if len(m.Others) != 1 || m.Others[0] != tc.other {
				t.Errorf("others = %+v, want %+v", m.Others, tc.other)
			}
			wantShared := []InstanceState{{Monitor: "vm", Instance: tc.other.ID, State: "dead"}}
			if len(rep.Peers) != 1 || rep.Peers[0].States["vm"] != tc.web1 || !slices.Equal(rep.Peers[0].SharedStates, wantShared) {
				t.Errorf("peers = %+v, want web-1 %s, and dead to %+v", rep.Peers, tc.web1, tc.other)
			}
			if got := strings.Join(rep.Find([]string{"dead", "unready"}), ", "); got != "1 peer dead, 1 monitor unready" {
				t.Errorf("Find(dead, unready) = %q", got)
			}
			if len(rep.Warnings) != 1 || rep.Warnings[0] != tc.warning {
				t.Errorf("warnings = %q, want %q", rep.Warnings, tc.warning)
			}
		})
	}
}

// TestGatherCountsDroppedReplies: replies that come faster than Gather
// reads them are dropped by NATS, which nats.go reports once as a slow
// consumer. Gather must read on, and report the drops, rather than end
// with what it has: the dropped replies may be the monitors'.
func TestGatherCountsDroppedReplies(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.ClientURL()
	meshtest.StartMonitor(t, url, "mon-a")
	evil := natstest.Connect(t, url)
	sub, err := evil.Subscribe(wire.MustSubjects(wire.DefaultPrefix).Control("peers"), func(req *nats.Msg) {
		for range 10_000 {
			if evil.Publish(req.Reply, []byte("{}")) != nil {
				return
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	nc := natstest.Connect(t, url)
	// Slow consumer errors are also reported to the connection's handler,
	// which by default logs them; they are expected here.
	nc.SetErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})
	r, err := gather(context.Background(), nc, "hb", 500*time.Millisecond, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, w := range r.Warnings {
		found = found || strings.Contains(w, "replies dropped")
	}
	if r.Ignored == 0 || !found {
		t.Errorf("ignored %d, warnings %q; want the dropped replies counted", r.Ignored, r.Warnings)
	}
	if f := r.Find([]string{"dead"}); len(f) != 1 || !strings.HasSuffix(f[0], "ignored") {
		t.Errorf("Find(dead) = %q, want the ignored replies", f)
	}
}

// TestPeerStatesBounded: each peers reply adds a state to every row, so
// fake monitors listing peers of their own grow a report as their product.
// Past maxStates a peers reply is ignored, counted and named.
func TestPeerStatesBounded(t *testing.T) {
	peers := func(mon string, ids ...string) *nats.Msg {
		r := discovery.PeersResponse{Monitor: mon, Total: len(ids)}
		for _, id := range ids {
			r.Peers = append(r.Peers, monitor.PeerJSON{ID: id, State: monitor.StateAlive})
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return &nats.Msg{Data: b}
	}
	g := newGathering()
	g.maxStates = 6
	g.add(true, peers("mon-a", "web-1", "web-2"))          // 2 peers × 1 monitor
	g.add(true, peers("mon-b", "web-1", "web-2"))          // the same peers: 2 × 2
	g.add(true, peers("mon-c", "web-1"))                   // 2 × 3
	g.add(true, peers("fake", "fake-1", "fake-2"))         // 4 × 4: ignored
	g.add(true, peers("mon-a", "web-1", "web-2", "web-3")) // mon-a again, one more: 3 × 4 ignored
	r := g.report(time.Unix(0, 0), "hb.monitor.v1.peers")
	if len(r.Peers) != 2 || len(r.Monitors) != 3 {
		t.Errorf("report has %d peers and monitors %+v; want web-1, web-2 of mon-a, mon-b and mon-c", len(r.Peers), r.Monitors)
	}
	want := "ignored 2 peers replies past 2000000 peer states (peers × monitors): is something other than monitors answering on hb.monitor.v1.peers?"
	if r.Ignored != 2 || len(r.Warnings) != 1 || r.Warnings[0] != want {
		t.Errorf("ignored %d, warnings %q; want 2 and %q", r.Ignored, r.Warnings, want)
	}
}

// TestInstanceIDsBounded: thousands of replies under one monitor id, each
// from an instance of its own, are all counted but only the first few
// listed and read, so checking for a repeat stays cheap and the warning
// short. The others are ignored, which fails every --fail-on: their
// verdicts are not read.
func TestInstanceIDsBounded(t *testing.T) {
	g := newGathering()
	const n = 5000
	for i := range n {
		g.add(false, reply{instance: fmt.Sprintf("I%04d", i), ready: true}.msg(t))
	}
	r := g.report(time.Unix(0, 0), "hb.monitor.v1.peers")
	m := r.Monitors[0]
	if m.Instances != n || len(m.InstanceIDs) != maxInstanceIDs || len(m.Others) != maxInstanceIDs-1 || len(m.Where) != 0 {
		t.Errorf("instances %d, %d instance ids, %d others, where %v; want %d, %d, %d and none",
			m.Instances, len(m.InstanceIDs), len(m.Others), m.Where, n, maxInstanceIDs, maxInstanceIDs-1)
	}
	if len(r.Warnings) != 2 || !strings.HasSuffix(r.Warnings[0], fmt.Sprintf(", I0015, and %d more): give each its own --id", n-maxInstanceIDs)) ||
		r.Warnings[1] != fmt.Sprintf("ignored %d replies past %d monitors under one id: is something other than monitors answering on hb.monitor.v1.peers?", n-maxInstanceIDs, maxInstanceIDs) {
		t.Errorf("warnings = %q", r.Warnings)
	}
	if r.Ignored != n-maxInstanceIDs {
		t.Errorf("ignored %d, want %d", r.Ignored, n-maxInstanceIDs)
	}
}
