package status_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
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

// vmInstance answers every control request of the mesh as instance inst
// of monitor "vm", with peers and readiness ready. Before answering a
// request it takes a token from the endpoint's channel in after, if any;
// once its answer is with the server, it puts one in the endpoint's
// channel in done, if any. So two instances answer in a known order.
func vmInstance(t *testing.T, nc *nats.Conn, inst string, ready bool, peers []discovery.Peer, after, done map[string]chan struct{}) {
	t.Helper()
	respond(t, nc, func(endpoint, reply string) []*nats.Msg {
		if ch := after[endpoint]; ch != nil {
			<-ch
		}
		var m *nats.Msg
		if endpoint == discovery.EndpointPeers {
			m = jsonMsg(t, discovery.PeersResponse{Type: discovery.PeersResponseType, Monitor: "vm", Instance: inst, Total: len(peers), Peers: peers})
		} else {
			m = jsonMsg(t, discovery.StatusResponse{
				Type: discovery.StatusResponseType, Monitor: "vm", Instance: inst, Host: "vm", PID: 100,
				Ready: ready, ReadyError: map[bool]string{false: "catching up"}[ready], Connected: true, Peers: len(peers),
			})
		}
		m.Subject = reply
		_ = nc.PublishMsg(m)
		_ = nc.Flush()
		if ch := done[endpoint]; ch != nil {
			ch <- struct{}{}
		}
		return nil
	})
}

// TestSharedIDEveryInstanceCounts: two monitors answer as "vm". The first
// to answer sees every peer alive and is ready; the second sees web-1
// dead, web-2 suspect, two processes beating as web-3, and is not ready.
// The report's column shows the first, the lower instance id, but every
// condition of --fail-on must count what the second says: a check that
// leaves out shared-id must not pass on the word of the instance in the
// column.
func TestSharedIDEveryInstanceCounts(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.ClientURL()
	alive := func(id string) discovery.Peer {
		return discovery.Peer{ID: id, Host: id + ".example", State: monitor.StateAlive}
	}
	// Buffered for every request of the test: the first instance never waits.
	firstDone := map[string]chan struct{}{discovery.EndpointPeers: make(chan struct{}, 16), discovery.EndpointStatus: make(chan struct{}, 16)}
	vmInstance(t, natstest.Connect(t, url), "INSTA", true, []discovery.Peer{alive("web-1"), alive("web-2"), alive("web-3")}, nil, firstDone)
	web1, web2, web3 := alive("web-1"), alive("web-2"), alive("web-3")
	web1.State, web2.State, web3.Conflict = monitor.StateDead, monitor.StateSuspect, true
	vmInstance(t, natstest.Connect(t, url), "INSTB", false, []discovery.Peer{web1, web2, web3}, firstDone, nil)

	nc := natstest.Connect(t, url)
	run := func(o status.Options) (string, error) {
		t.Helper()
		var stdout bytes.Buffer
		o.Wait = 2 * time.Second
		err := status.Run(context.Background(), nc, o, &stdout)
		return stdout.String(), err
	}
	for _, tc := range []struct{ cond, want string }{
		{"dead", "1 peer dead"},
		{"suspect", "1 peer suspect"},
		{"split", "2 peers split"},
		{"conflict", "1 peer id in conflict"},
		{"unready", "1 monitor unready"},
		{"dead,suspect,split,unready,conflict", "1 peer dead, 1 peer suspect, 2 peers split, 1 monitor unready, 1 peer id in conflict"},
	} {
		t.Run(tc.cond, func(t *testing.T) {
			out, err := run(status.Options{FailOn: tc.cond})
			if !errors.Is(err, status.ErrFailOn) || err.Error() != "--fail-on: "+tc.want {
				t.Errorf("--fail-on %s: err = %v, want %s\n%s", tc.cond, err, tc.want, out)
			}
		})
	}

	// The table names the instance that said so.
	out, _ := run(status.Options{})
	t.Logf("\n%s", out)
	rows := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if id, _, ok := strings.Cut(line, " "); ok {
			rows[id] = line
		}
	}
	for id, want := range map[string]string{
		"web-1": "! vm@INSTA=alive vm@INSTB=dead",
		"web-2": "! vm@INSTA=alive vm@INSTB=suspect",
		"web-3": "! two processes beat as this id",
	} {
		if !strings.Contains(rows[id], want) {
			t.Errorf("%s row lacks %q: %q", id, want, rows[id])
		}
	}
	if !strings.Contains(out, "2 MONITORS SHARE THIS ID, showing instance INSTA; instance INSTB: NOT READY: catching up") {
		t.Errorf("footer does not say the other instance is not ready:\n%s", out)
	}

	// So does the JSON, in fields of their own; the column's fields keep
	// their meaning.
	out, err := run(status.Options{JSON: true})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Monitors []struct {
			ID       string `json:"id"`
			Instance string `json:"instance"`
			Ready    bool   `json:"ready"`
			Others   []struct {
				Instance   string `json:"instance"`
				Status     bool   `json:"status"`
				Ready      bool   `json:"ready"`
				ReadyError string `json:"ready_error"`
				Peers      bool   `json:"peers_answered"`
			} `json:"others"`
		} `json:"monitors"`
		Peers []struct {
			ID           string            `json:"id"`
			State        string            `json:"state"`
			Disagree     bool              `json:"disagree"`
			States       map[string]string `json:"states"`
			SharedStates []struct {
				Monitor, Instance, State string
			} `json:"shared_states"`
		} `json:"peers"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(doc.Monitors) != 1 || len(doc.Monitors[0].Others) != 1 {
		t.Fatalf("monitors = %+v", doc.Monitors)
	}
	if m, o := doc.Monitors[0], doc.Monitors[0].Others[0]; m.Instance != "INSTA" || !m.Ready ||
		o.Instance != "INSTB" || !o.Status || o.Ready || o.ReadyError != "catching up" || !o.Peers {
		t.Errorf("vm = %+v", m)
	}
	if len(doc.Peers) != 3 {
		t.Fatalf("peers = %+v", doc.Peers)
	}
	for i, want := range []struct{ id, state, other string }{{"web-1", "dead", "dead"}, {"web-2", "suspect", "suspect"}, {"web-3", "alive", ""}} {
		p := doc.Peers[i]
		if p.ID != want.id || p.States["vm"] != "alive" {
			t.Errorf("peer %d = %+v, want %s with vm=alive", i, p, want.id)
			continue
		}
		if want.other == "" {
			if len(p.SharedStates) != 0 || p.Disagree || p.State != "alive" {
				t.Errorf("%s = %+v, want no other view", p.ID, p)
			}
			continue
		}
		if len(p.SharedStates) != 1 || p.SharedStates[0].Monitor != "vm" || p.SharedStates[0].Instance != "INSTB" ||
			p.SharedStates[0].State != want.other || !p.Disagree || p.State != status.StateSplit {
			t.Errorf("%s = %+v, want vm@INSTB=%s and a split", p.ID, p, want.other)
		}
	}
}

// TestSharedIDDeadCountsWhicheverAnswersFirst is the same with real
// monitors, which answer in no set order: two hosts called vm, one quick
// to convict, one patient. Whichever answers first, --fail-on dead sees
// the quick one's verdict.
func TestSharedIDDeadCountsWhicheverAnswersFirst(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.ClientURL()
	quick, _ := meshtest.StartMonitor(t, url, "vm")
	patient, _ := meshtest.StartMonitor(t, url, "vm", func(c *monitor.Config) { c.SuspectAfter, c.DeadAfter = 50, 100 })
	kill := meshtest.StartNode(t, url, "web-1", fast)
	for _, m := range []*monitor.Monitor{quick, patient} {
		natstest.Eventually(t, "web-1 alive", func() bool { p, ok := m.Peer("web-1"); return ok && p.State == monitor.StateAlive })
	}
	kill()
	natstest.Eventually(t, "the quick monitor convicts web-1", func() bool { p, _ := quick.Peer("web-1"); return p.State == monitor.StateDead })
	nc := natstest.Connect(t, url)
	for range 5 {
		if p, _ := patient.Peer("web-1"); p.State != monitor.StateAlive {
			t.Fatalf("the patient monitor already says %v; the test relies on its patience", p.State)
		}
		var out bytes.Buffer
		err := status.Run(context.Background(), nc, status.Options{FailOn: "dead"}, &out)
		if !errors.Is(err, status.ErrFailOn) || err.Error() != "--fail-on: 1 peer dead" {
			t.Fatalf("err = %v, want 1 peer dead\n%s", err, out.String())
		}
	}
}

// sharedReplies answers every control request of the mesh with msgs,
// all sent on the status request, so that one connection sends them all
// and they arrive in the order given, peers and status replies
// interleaved.
func sharedReplies(t *testing.T, nc *nats.Conn, msgs []*nats.Msg) {
	t.Helper()
	var peersReply string
	respond(t, nc, func(endpoint, reply string) []*nats.Msg {
		if endpoint == discovery.EndpointPeers {
			peersReply = reply // the status request follows on the same subscription
			return nil
		}
		for _, m := range msgs {
			out := &nats.Msg{Subject: reply, Data: m.Data}
			if m.Subject == discovery.EndpointPeers {
				out.Subject = peersReply
			}
			if nc.PublishMsg(out) != nil {
				return nil // the test is over
			}
		}
		return nil
	})
}

// sharedTime is when the replies of vmPeers were sent.
func sharedTime() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }

// vmPeers is a peers reply of monitor vm, for sharedReplies, listing
// web-1, web-2, … in states, web-N last heard N seconds before
// sharedTime.
func vmPeers(t *testing.T, inst string, states ...monitor.State) *nats.Msg {
	t.Helper()
	r := discovery.PeersResponse{Type: discovery.PeersResponseType, Monitor: "vm", Instance: inst, Total: len(states)}
	for i, st := range states {
		id := fmt.Sprintf("web-%d", i+1)
		r.Peers = append(r.Peers, discovery.Peer{ID: id, Host: id + ".example", State: st, LastBeat: sharedTime().Add(-time.Duration(i+1) * time.Second), Seq: uint64(i + 1)})
	}
	m := jsonMsg(t, r)
	m.Subject = discovery.EndpointPeers
	return m
}

// vmStatus is a status reply of monitor vm, for sharedReplies, with
// peers peers in its table; "catching up" if not ready.
func vmStatus(t *testing.T, inst, host string, pid int, ready bool, version string, peers int) *nats.Msg {
	t.Helper()
	m := jsonMsg(t, discovery.StatusResponse{
		Type: discovery.StatusResponseType, Monitor: "vm", Instance: inst, Host: host, PID: pid, Version: version,
		Ready: ready, ReadyError: map[bool]string{false: "catching up"}[ready], Connected: true, Peers: peers,
	})
	m.Subject = discovery.EndpointStatus
	return m
}

// TestSharedIDSameRepliesSameReport: one set of replies under a shared
// id, sent in different orders, renders the same table and the same
// JSON, byte for byte. Among them are an instance that answers only its
// status, two monitors too old to send an instance id, and a reply that
// repeats an instance id with other verdicts and another host, as a
// forger's would. The row and column show the lowest instance id among
// those that answered both requests: INSTA, not INST0, which sent no
// peers reply.
func TestSharedIDSameRepliesSameReport(t *testing.T) {
	t0 := sharedTime()
	peers := func(inst string, states ...monitor.State) *nats.Msg { return vmPeers(t, inst, states...) }
	stat := func(inst, host string, pid int, ready bool, version string, n int) *nats.Msg {
		return vmStatus(t, inst, host, pid, ready, version, n)
	}
	alive, suspect, dead := monitor.StateAlive, monitor.StateSuspect, monitor.StateDead
	replies := []*nats.Msg{
		stat("INSTB", "vm-b", 2, true, "v1.2.0", 2), peers("INSTB", dead, alive),
		stat("INSTA", "vm-a", 1, false, "v1.1.0", 2), peers("INSTA", alive, alive),
		stat("INST0", "vm-0", 3, true, "v1.2.0", 2), // no peers reply
		stat("", "", 0, true, "v0.9.0", 1), peers("", alive),
		stat("", "", 0, false, "v0.9.1", 2), peers("", suspect, alive),
		stat("INSTB", "evil", 666, true, "v9", 2), peers("INSTB", alive, dead),
	}
	orders := map[string][]int{
		"as listed": {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
		"reversed":  {10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0},
		"peers first, then status, each reversed": {9, 7, 5, 3, 1, 10, 8, 6, 4, 2, 0},
	}
	srv := natstest.Start(t)
	url := srv.ClientURL()
	var first, firstName string
	for _, name := range slices.Sorted(maps.Keys(orders)) {
		msgs := make([]*nats.Msg, 0, len(replies))
		for _, i := range orders[name] {
			msgs = append(msgs, replies[i])
		}
		fake := natstest.Connect(t, url)
		sharedReplies(t, fake, msgs)
		// INST0 never sends its peers reply, so the whole wait is sat out.
		r, err := status.Gather(context.Background(), natstest.Connect(t, url), "hb", time.Second)
		fake.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		r.Time = t0 // the time asked, the one thing that differs between rounds
		var out bytes.Buffer
		if err := status.Render(&out, r, status.RenderOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := status.RenderJSON(&out, r); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "6 MONITORS SHARE THIS ID, showing instance INSTA; ") {
			t.Errorf("%s: the row does not show INSTA, the lowest instance id that answered both requests:\n%s", name, out.String())
		}
		if first == "" {
			first, firstName = out.String(), name
			t.Logf("%s:\n%s", name, first)
			continue
		}
		if out.String() != first {
			t.Errorf("replies %s render otherwise than %s:\n%s\nwant:\n%s", name, firstName, out.String(), first)
		}
	}
}

// TestSharedIDOthersVersionAndPeers: each other instance under a shared
// id says in the JSON which version it runs and how many peers it holds,
// as the monitor's own fields do for the instance the row shows: from
// its status reply, or, for the count, the total of its peers reply
// when that alone came.
func TestSharedIDOthersVersionAndPeers(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.ClientURL()
	alive := monitor.StateAlive
	sharedReplies(t, natstest.Connect(t, url), []*nats.Msg{
		vmStatus(t, "INSTA", "vm-a", 1, true, "v1.1.0", 2), vmPeers(t, "INSTA", alive, alive),
		vmStatus(t, "INSTB", "vm-b", 2, true, "v1.2.0", 3), vmPeers(t, "INSTB", alive, alive, alive),
		vmPeers(t, "INSTC", alive), // no status reply
	})
	var out bytes.Buffer
	// INSTC never sends its status reply, so the whole wait is sat out.
	if err := status.Run(context.Background(), natstest.Connect(t, url), status.Options{JSON: true, Wait: time.Second}, &out); err != nil {
		t.Fatal(err)
	}
	type fields struct {
		Instance string `json:"instance"`
		Version  string `json:"version"`
		Peers    int    `json:"peers"`
	}
	var doc struct {
		Monitors []struct {
			fields
			Others []json.RawMessage `json:"others"`
		} `json:"monitors"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	if len(doc.Monitors) != 1 || len(doc.Monitors[0].Others) != 2 {
		t.Fatalf("want vm with 2 others:\n%s", out.String())
	}
	if m := doc.Monitors[0].fields; m != (fields{"INSTA", "v1.1.0", 2}) {
		t.Errorf("vm = %+v, want INSTA v1.1.0 with 2 peers", m)
	}
	for i, want := range []fields{{"INSTB", "v1.2.0", 3}, {"INSTC", "", 1}} {
		raw := doc.Monitors[0].Others[i]
		var got fields
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		// "version" is left out when unknown, as on the monitor; "peers" never.
		if got != want || strings.Contains(string(raw), `"version"`) != (want.Version != "") || !strings.Contains(string(raw), `"peers":`) {
			t.Errorf("others[%d] = %s, want %+v", i, raw, want)
		}
	}
}
