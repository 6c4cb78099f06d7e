package status

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
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
	var v any = discovery.StatusResponse{Type: discovery.StatusResponseType, Instance: r.instance,
		StatusJSON: monitor.StatusJSON{Monitor: "vm", Ready: r.ready, Peers: 1}}
	subject := "_INBOX.x.status"
	if r.peers {
		subject = "_INBOX.x.peers"
		v = discovery.PeersResponse{
			Type: discovery.PeersResponseType, Monitor: "vm", Instance: r.instance, Total: 1,
			Peers: []monitor.PeerJSON{{ID: "web-1", State: r.state}},
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return &nats.Msg{Subject: subject, Data: b}
}

// TestSharedIDColumns: monitors that share an id are each a monitor of
// their own, in a column named id@instance, whatever order their replies
// come in; each one's verdicts count for --fail-on, and the report warns.
func TestSharedIDColumns(t *testing.T) {
	replies := []reply{
		{instance: "A", peers: true, state: monitor.StateAlive},
		{instance: "B", ready: false},
		{instance: "B", peers: true, state: monitor.StateDead},
		{instance: "A", ready: true},
	}
	g := newGathering()
	for _, r := range replies {
		g.add(r.peers, r.msg(t))
	}
	rep := g.report(time.Unix(0, 0), "hb.monitor.v1.peers")
	for _, order := range [][]int{{3, 2, 1, 0}, {1, 3, 0, 2}} {
		g := newGathering()
		for _, i := range order {
			g.add(replies[i].peers, replies[i].msg(t))
		}
		if other := g.report(time.Unix(0, 0), "hb.monitor.v1.peers"); !reflect.DeepEqual(other, rep) {
			t.Errorf("replies in order %v: %+v\nwant, as in order 0 1 2 3: %+v", order, other, rep)
		}
	}
	want := []Monitor{
		{ID: "vm", Instance: "A", Instances: 2, Status: true, Ready: true, Peers: 1, PeersAnswered: true},
		{ID: "vm", Instance: "B", Instances: 2, Status: true, Peers: 1, PeersAnswered: true},
	}
	if !reflect.DeepEqual(rep.Monitors, want) || rep.Monitors[0].Column() != "vm@A" || rep.Monitors[1].Column() != "vm@B" {
		t.Errorf("monitors = %+v\nwant %+v", rep.Monitors, want)
	}
	if len(rep.Peers) != 1 || !reflect.DeepEqual(rep.Peers[0].States, map[string]string{"vm@A": "alive", "vm@B": "dead"}) ||
		rep.Peers[0].State != StateSplit {
		t.Errorf("peers = %+v, want web-1 alive to vm@A and dead to vm@B", rep.Peers)
	}
	if got := strings.Join(rep.Find([]string{"dead", "unready", "shared-id"}), ", "); got != "1 peer dead, 1 monitor unready, 1 monitor id shared" {
		t.Errorf("Find = %q", got)
	}
	if w := `2 monitors answer as "vm" (instances A, B): give each its own --id`; len(rep.Warnings) != 1 || rep.Warnings[0] != w {
		t.Errorf("warnings = %q, want %q", rep.Warnings, w)
	}
}

// TestRepeatedRepliesIgnored: a second reply of one monitor (id and
// instance id) to one request, as from two monitors too old to send an
// instance id that share an id, or a forger, is not read but counted, so
// every --fail-on fails: its verdicts may be the ones that matter.
func TestRepeatedRepliesIgnored(t *testing.T) {
	g := newGathering()
	for _, r := range []reply{
		{peers: true, state: monitor.StateAlive}, {ready: true},
		{peers: true, state: monitor.StateDead}, {ready: false},
	} {
		g.add(r.peers, r.msg(t))
	}
	r := g.report(time.Unix(0, 0), "hb.monitor.v1.peers")
	if len(r.Monitors) != 1 || r.Monitors[0].Column() != "vm" || !r.Monitors[0].Ready || r.Peers[0].States["vm"] != "alive" {
		t.Errorf("report = %+v, want vm's first replies", r)
	}
	if r.Ignored != 2 || len(r.Warnings) != 1 || r.Warnings[0] != `ignored 2 replies, the first on _INBOX.x.peers: a second reply from monitor "vm" instance ""` {
		t.Errorf("ignored %d, warnings %q", r.Ignored, r.Warnings)
	}
	if got := r.Find([]string{"split"}); len(got) != 1 || got[0] != "2 replies ignored" {
		t.Errorf("Find(split) = %q", got)
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
	r, err := Gather(context.Background(), nc, Options{Wait: 500 * time.Millisecond, pending: 1})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, w := range r.Warnings {
		found = found || strings.HasPrefix(w, "NATS dropped ") && strings.HasSuffix(w, " replies, coming faster than they could be read")
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
		return &nats.Msg{Subject: "_INBOX.x.peers", Data: b}
	}
	g := newGathering()
	g.maxStates = 6
	g.add(true, peers("mon-a", "web-1", "web-2"))  // 2 peers × 1 monitor
	g.add(true, peers("mon-b", "web-1", "web-2"))  // the same peers: 2 × 2
	g.add(true, peers("mon-c", "web-1"))           // 2 × 3
	g.add(true, peers("fake", "fake-1", "fake-2")) // 4 × 4: ignored
	r := g.report(time.Unix(0, 0), "hb.monitor.v1.peers")
	if len(r.Peers) != 2 || len(r.Monitors) != 3 {
		t.Errorf("report has %d peers and monitors %+v; want web-1, web-2 of mon-a, mon-b and mon-c", len(r.Peers), r.Monitors)
	}
	want := "ignored 1 reply, the first on _INBOX.x.peers: past 2000000 peer states (peers × monitors)"
	if r.Ignored != 1 || len(r.Warnings) != 1 || r.Warnings[0] != want {
		t.Errorf("ignored %d, warnings %q; want 1 and %q", r.Ignored, r.Warnings, want)
	}
}

// TestMonitorsBounded: replies from thousands of monitors, here each an
// instance of its own under one id, are all counted but only the first
// MaxMonitors read. The others are ignored, which fails every --fail-on:
// their verdicts are not read.
func TestMonitorsBounded(t *testing.T) {
	g := newGathering()
	const n = 5000
	for i := range n {
		g.add(false, reply{instance: fmt.Sprintf("I%04d", i), ready: true}.msg(t))
	}
	r := g.report(time.Unix(0, 0), "hb.monitor.v1.peers")
	if len(r.Monitors) != MaxMonitors || r.Monitors[0].Instances != MaxMonitors || r.Ignored != n-MaxMonitors {
		t.Errorf("%d monitors, %d instances of vm, ignored %d; want %d, %d and %d",
			len(r.Monitors), r.Monitors[0].Instances, r.Ignored, MaxMonitors, MaxMonitors, n-MaxMonitors)
	}
	want := fmt.Sprintf("ignored %d replies, the first on _INBOX.x.status: more than %d monitors", n-MaxMonitors, MaxMonitors)
	if len(r.Warnings) != 2 || r.Warnings[1] != want {
		t.Errorf("warnings = %q, want the shared id and %q", r.Warnings, want)
	}
}
