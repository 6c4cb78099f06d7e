package status_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
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
func vmInstance(t *testing.T, nc *nats.Conn, inst string, ready bool, peers []monitor.PeerJSON, after, done map[string]chan struct{}) {
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
				Type: discovery.StatusResponseType, Instance: inst, Host: "vm", PID: 100, StatusJSON: monitor.StatusJSON{
					Monitor: "vm", Ready: ready, ReadyError: map[bool]string{false: "catching up"}[ready], Connected: true, Peers: len(peers),
				},
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
// Each is a column of its own, and every condition of --fail-on counts
// what the second says: a check that leaves out shared-id must not pass
// on the word of the first.
func TestSharedIDEveryInstanceCounts(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.ClientURL()
	alive := func(id string) monitor.PeerJSON {
		return monitor.PeerJSON{ID: id, Host: id + ".example", State: monitor.StateAlive}
	}
	// Buffered for every request of the test: the first instance never waits.
	firstDone := map[string]chan struct{}{discovery.EndpointPeers: make(chan struct{}, 16), discovery.EndpointStatus: make(chan struct{}, 16)}
	vmInstance(t, natstest.Connect(t, url), "INSTA", true, []monitor.PeerJSON{alive("web-1"), alive("web-2"), alive("web-3")}, nil, firstDone)
	web1, web2, web3 := alive("web-1"), alive("web-2"), alive("web-3")
	web1.State, web2.State, web3.Conflict = monitor.StateDead, monitor.StateSuspect, true
	vmInstance(t, natstest.Connect(t, url), "INSTB", false, []monitor.PeerJSON{web1, web2, web3}, firstDone, nil)

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

	// The table has a column for each, and the footer a line.
	out, _ := run(status.Options{})
	t.Logf("\n%s", out)
	rows := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if id, _, ok := strings.Cut(strings.TrimSpace(line), " "); ok {
			rows[id] = line
		}
	}
	for id, want := range map[string]string{
		"ID":       "  vm@INSTA  vm@INSTB",
		"web-1":    "! vm@INSTA=alive vm@INSTB=dead ",
		"web-2":    "! vm@INSTA=alive vm@INSTB=suspect ",
		"web-3":    "! two processes beat as this id ",
		"vm@INSTB": "NOT READY: catching up",
		"warning:": `2 monitors answer as "vm" (instances INSTA, INSTB): give each its own --id`,
		"3":        "3 peers, 2 monitors under 1 id, monitors disagree on 2, 1 beaten by two processes:",
	} {
		if !strings.Contains(rows[id], want) {
			t.Errorf("%s row lacks %q: %q", id, want, rows[id])
		}
	}

	// So does the JSON: a monitor each, and a state each.
	out, err := run(status.Options{JSON: true})
	if err != nil {
		t.Fatal(err)
	}
	var doc status.Report
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(doc.Monitors) != 2 || doc.Monitors[0].Instance != "INSTA" || !doc.Monitors[0].Ready ||
		doc.Monitors[1].Instance != "INSTB" || doc.Monitors[1].Ready || doc.Monitors[1].ReadyError != "catching up" {
		t.Fatalf("monitors = %+v", doc.Monitors)
	}
	if len(doc.Peers) != 3 || doc.Peers[0].ID != "web-1" ||
		!maps.Equal(doc.Peers[0].States, map[string]string{"vm@INSTA": "alive", "vm@INSTB": "dead"}) {
		t.Errorf("peers = %+v", doc.Peers)
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
