package status_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/hbmesh/hbmesh/internal/discovery"
	"github.com/hbmesh/hbmesh/internal/meshtest"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/internal/status"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/wire"
)

// hostile is text an attacker who may answer on the control subjects
// would like on an operator's terminal: clear the screen, set the window
// title, and a line of its own with every peer alive.
const hostile = "x\x1b[2J\x1b]0;owned\x07\r\nweb-9  w9  alive     0.1s  1  v1  A"

// checkTerminalSafe fails if out holds anything but printable runes and
// newlines.
func checkTerminalSafe(t *testing.T, out string) {
	t.Helper()
	for _, r := range out {
		if r != '\n' && !unicode.IsPrint(r) {
			t.Fatalf("output holds %U:\n%q", r, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "web-9") {
			t.Fatalf("a forged row made it onto its own line:\n%s", out)
		}
	}
}

// respond has nc answer every control request of the mesh with what
// answer returns for the endpoint ("peers" or "status"): each message
// is published to the request's reply subject in turn.
func respond(t *testing.T, nc *nats.Conn, answer func(endpoint, reply string) []*nats.Msg) {
	t.Helper()
	sub, err := nc.Subscribe(wire.MustSubjects(wire.DefaultPrefix).Control("*"), func(req *nats.Msg) {
		endpoint := req.Subject[strings.LastIndexByte(req.Subject, '.')+1:]
		for _, m := range answer(endpoint, req.Reply) {
			m.Subject = req.Reply
			if err := nc.PublishMsg(m); err != nil {
				return // the test is over
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// jsonMsg is a message with v in JSON, or v itself if it is a []byte.
func jsonMsg(t *testing.T, v any) *nats.Msg {
	t.Helper()
	if b, ok := v.([]byte); ok {
		return &nats.Msg{Data: b}
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Error(err)
	}
	return &nats.Msg{Data: b}
}

// TestRenderEscapesHostileReplies feeds replies that keep to every bound a
// monitor keeps but put escape sequences and line breaks in each text
// field through a real server, and checks what reaches the terminal.
func TestRenderEscapesHostileReplies(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.ClientURL()
	meshtest.StartMonitor(t, url, "mon-a")
	meshtest.StartNode(t, url, "web-1", fast)
	evil := natstest.Connect(t, url)
	respond(t, evil, func(endpoint, reply string) []*nats.Msg {
		if endpoint == discovery.EndpointPeers {
			return []*nats.Msg{jsonMsg(t, discovery.PeersResponse{
				Type: discovery.PeersResponseType, Monitor: "mon-x", Instance: "INST1", Total: 2,
				Peers: []monitor.PeerJSON{
					{ID: "web-1", Host: hostile, State: monitor.StateDead, Version: hostile, Boot: hostile, LastBeat: time.Now()},
					{ID: "web-2", Host: hostile, State: monitor.StateAlive, Version: "v\u202e1"},
				},
			})}
		}
		// And an error reply, as micro sends them, for a warning.
		return []*nats.Msg{
			jsonMsg(t, discovery.StatusResponse{Type: discovery.StatusResponseType, Instance: "INST1", Host: hostile, PID: 1,
				StatusJSON: monitor.StatusJSON{Monitor: "mon-x", Version: hostile[:20], ReadyError: hostile}}),
			{Header: nats.Header{micro.ErrorCodeHeader: {"500"}, micro.ErrorHeader: {hostile}}},
		}
	})
	r, err := status.Gather(context.Background(), natstest.Connect(t, url), status.Options{Wait: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := status.Render(&out, r); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", out.String())
	checkTerminalSafe(t, out.String())
	for _, want := range []string{
		`"x\x1b[2J\x1b]0;owned\a\r\nweb-9  w9  alive     0.1s  1  v1  A"`, // a host, escaped
		`NOT READY: "x\x1b[2J`, // the ready error
		`"v\u202e1"`,           // a right-to-left override
		`warning: "ignored 1 reply, the first on _INBOX.`, // the error header, in a warning
		`.status: 500 x\x1b[2J\x1b]0;owned\a`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %s", want)
		}
	}
}

// TestGatherRefusesRepliesNoMonitorSends: errors, and ids that are not
// ids or peers without a state, are not read: they are counted and the
// first is named in a warning, never a row of their own, and every
// --fail-on fails.
func TestGatherRefusesRepliesNoMonitorSends(t *testing.T) {
	peers := func(mon string, ps ...monitor.PeerJSON) discovery.PeersResponse {
		return discovery.PeersResponse{Type: discovery.PeersResponseType, Monitor: mon, Total: len(ps), Peers: ps}
	}
	alive := func(id string) monitor.PeerJSON { return monitor.PeerJSON{ID: id, State: monitor.StateAlive} }
	for _, tc := range []struct {
		name     string
		endpoint string
		reply    any
		want     string
	}{
		{"not JSON", "peers", []byte(`{"monitor":`), "unexpected end of JSON input"},
		{"no monitor", "peers", peers(""), `monitor: invalid id "": empty`},
		{"monitor id with a newline", "peers", peers("mon\nweb-9 alive"), `monitor: invalid id "mon\nweb-9 alive": contains whitespace`},
		{"long monitor id", "peers", peers(strings.Repeat("m", 1<<16)), `monitor: invalid id "` + strings.Repeat("m", 64) + `"…: longer than 64 bytes`},
		{"instance with an escape", "peers", discovery.PeersResponse{Monitor: "mon-x", Instance: "\x1b[2J"}, `instance "\x1b[2J": want at most 64 letters and digits`},
		{"instance with an @", "status", discovery.StatusResponse{Instance: "A@B", StatusJSON: monitor.StatusJSON{Monitor: "mon-x"}}, `instance "A@B": want at most 64 letters and digits`},
		{"peer id with a newline", "peers", peers("mon-x", alive("web-1"), alive("web-1\r\nweb-9")), `peer 1: invalid id "web-1\r\nweb-9": contains whitespace`},
		{"no state", "peers", peers("mon-x", monitor.PeerJSON{ID: "web-1"}), `peer 0: no state`},
		{"pid past int", "status", []byte(`{"monitor":"mon-x","pid":1e99}`), "json: cannot unmarshal number 1e99 into Go struct field StatusResponse.pid of type int"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := natstest.Start(t)
			url := srv.ClientURL()
			meshtest.StartMonitor(t, url, "mon-a")
			evil := natstest.Connect(t, url)
			respond(t, evil, func(endpoint, _ string) []*nats.Msg {
				if endpoint == tc.endpoint {
					return []*nats.Msg{jsonMsg(t, tc.reply)}
				}
				return nil
			})
			r, err := status.Gather(context.Background(), natstest.Connect(t, url), status.Options{Wait: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Monitors) != 1 || r.Monitors[0].ID != "mon-a" || r.Ignored != 1 || len(r.Warnings) != 1 ||
				!strings.HasPrefix(r.Warnings[0], "ignored 1 reply, the first on _INBOX.") ||
				!strings.HasSuffix(r.Warnings[0], "."+tc.endpoint+": "+tc.want) {
				t.Errorf("monitors %+v, ignored %d, warnings %q\nwant mon-a only, and the bad reply named: %s", r.Monitors, r.Ignored, r.Warnings, tc.want)
			}
			if found := r.Find([]string{"dead"}); len(found) != 1 || found[0] != "1 reply ignored" {
				t.Errorf("--fail-on dead = %q, want the bad reply", found)
			}
		})
	}
}

// TestGatherBoundedUnderFlood: thousands of fake monitors, each with a
// reply near the max payload, cost no more than MaxMonitors of them and
// the wait; the report says what it ignored, and --fail-on fails it
// whatever the conditions, since the real monitor may be among them.
func TestGatherBoundedUnderFlood(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.ClientURL()
	meshtest.StartMonitor(t, url, "mon-a")
	evil := natstest.Connect(t, url)
	const fakes = 3 * status.MaxMonitors
	// Small replies: the flood is about the number of monitors, and must
	// arrive within the wait even on a loaded machine (500 peers a reply,
	// 4.8 MB in all, once did not, with the load average at 4 on 2 cores).
	ps := make([]monitor.PeerJSON, 50)
	for i := range ps {
		ps[i] = monitor.PeerJSON{ID: fmt.Sprintf("fake-%d", i), State: monitor.StateAlive}
	}
	// Encoded up front, so they follow each other as fast as NATS takes them.
	flood := make([]*nats.Msg, fakes)
	for i := range flood {
		flood[i] = jsonMsg(t, discovery.PeersResponse{Monitor: fmt.Sprintf("fake-mon-%d", i), Instance: fmt.Sprintf("I%d", i), Total: len(ps), Peers: ps})
	}
	respond(t, evil, func(endpoint, _ string) []*nats.Msg {
		if endpoint != discovery.EndpointPeers {
			return nil
		}
		return flood
	})
	const wait = 2 * time.Second
	start := time.Now()
	r, err := status.Gather(context.Background(), natstest.Connect(t, url), status.Options{Wait: wait})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > wait+time.Second {
		t.Errorf("Gather took %v under a flood; the wait is %v", took, wait)
	}
	if len(r.Monitors) > status.MaxMonitors {
		t.Errorf("report holds %d monitors, more than %d", len(r.Monitors), status.MaxMonitors)
	}
	if r.Ignored == 0 || len(r.Warnings) == 0 {
		t.Fatalf("ignored %d, warnings %q; want the flood reported", r.Ignored, r.Warnings)
	}
	t.Logf("%d monitors; ignored %d; warnings %q", len(r.Monitors), r.Ignored, r.Warnings)
	found := r.Find([]string{"dead"})
	if len(found) != 1 || !strings.HasSuffix(found[0], "replies ignored") {
		t.Errorf("Find(dead) = %q, want the ignored replies", found)
	}
}

// TestForgedNoRespondersCannotEndGather: nats.go reports an empty reply
// with status 503 as "no responders", which Gather takes as the server
// saying no monitor listens. Anyone who may answer can send one. After a
// forged monitor's all-clear and two forged 503s, a real monitor that
// answers later must still be heard, so --fail-on dead sees its verdict.
func TestForgedNoRespondersCannotEndGather(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.ClientURL()
	forged := make(chan struct{})
	evil := natstest.Connect(t, url)
	respond(t, evil, func(endpoint, reply string) []*nats.Msg {
		if endpoint != discovery.EndpointPeers {
			return nil
		}
		defer close(forged)
		noResponders := func(subject string) *nats.Msg {
			return &nats.Msg{Subject: subject, Header: nats.Header{"Status": {"503"}}}
		}
		inbox := strings.TrimSuffix(reply, "."+discovery.EndpointPeers)
		for _, m := range []*nats.Msg{
			jsonMsg(t, discovery.PeersResponse{Monitor: "mon-z", Instance: "Z", Total: 1, Peers: []monitor.PeerJSON{{ID: "web-1", State: monitor.StateAlive}}}),
			noResponders(inbox + "." + discovery.EndpointPeers),
			noResponders(inbox + "." + discovery.EndpointStatus),
		} {
			if m.Subject == "" {
				m.Subject = reply
			}
			_ = evil.PublishMsg(m)
		}
		_ = evil.Flush()
		return nil
	})
	// The real monitor, slower than the forger: it answers once the
	// forgeries are on their way.
	real := natstest.Connect(t, url)
	respond(t, real, func(endpoint, _ string) []*nats.Msg {
		<-forged
		if endpoint == discovery.EndpointPeers {
			return []*nats.Msg{jsonMsg(t, discovery.PeersResponse{Monitor: "mon-a", Instance: "A", Total: 1, Peers: []monitor.PeerJSON{{ID: "web-1", State: monitor.StateDead}}})}
		}
		return []*nats.Msg{jsonMsg(t, discovery.StatusResponse{Instance: "A", StatusJSON: monitor.StatusJSON{Monitor: "mon-a", Ready: true, Connected: true, Peers: 1}})}
	})
	var out bytes.Buffer
	err := status.Run(context.Background(), natstest.Connect(t, url), status.Options{Wait: 500 * time.Millisecond, FailOn: "dead"}, &out)
	if !errors.Is(err, status.ErrFailOn) || !strings.Contains(err.Error(), "1 peer dead") {
		t.Errorf("Run --fail-on dead = %v, want 1 peer dead\n%s", err, out.String())
	}
}

// TestRenderJSONEscapesControls: `hbmesh status --json` is printed as is;
// encoding/json escapes C0 controls but leaves C1 raw, and some
// terminals obey U+009B as CSI.
func TestRenderJSONEscapesControls(t *testing.T) {
	r := &status.Report{Type: status.ReportType, Peers: []status.Peer{{ID: "web-1", Host: "h\u009b2J\x7f\x1b]0;x\x07", Version: "\u0085"}}}
	var out bytes.Buffer
	if err := status.RenderJSON(&out, r); err != nil {
		t.Fatal(err)
	}
	for _, c := range out.String() {
		if unicode.IsControl(c) && c != '\n' {
			t.Fatalf("JSON holds control %U:\n%q", c, out.String())
		}
	}
	var back status.Report
	if err := json.Unmarshal(out.Bytes(), &back); err != nil || back.Peers[0].Host != r.Peers[0].Host || back.Peers[0].Version != "\u0085" {
		t.Errorf("JSON %s decodes to %+v, %v", out.String(), back.Peers, err)
	}
}
