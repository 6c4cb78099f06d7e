package discovery_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/internal/cfgerr"
	"github.com/hbmesh/hbmesh/internal/discovery"
	"github.com/hbmesh/hbmesh/internal/meshtest"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/monitor"
)

// mesh is two monitors and one node on one real server.
type mesh struct {
	url    string
	client *nats.Conn
	m1, m2 *monitor.Monitor
	s1, s2 *discovery.Service
}

func startMesh(t *testing.T) *mesh {
	t.Helper()
	srv := natstest.Start(t)
	ms := &mesh{url: srv.ClientURL()}
	ms.m1, ms.s1 = meshtest.StartMonitor(t, ms.url, "mon-a")
	ms.m2, ms.s2 = meshtest.StartMonitor(t, ms.url, "mon-b")
	meshtest.StartNode(t, ms.url, "web-1", fast)
	for _, m := range []*monitor.Monitor{ms.m1, ms.m2} {
		natstest.Eventually(t, m.ID()+" sees web-1 alive", func() bool {
			p, ok := m.Peer("web-1")
			return ok && p.State == monitor.StateAlive
		})
	}
	ms.client = natstest.Connect(t, ms.url)
	return ms
}

// instance returns the micro instance id of the service of monitor id.
func (ms *mesh) instance(id string) string {
	if id == ms.m1.ID() {
		return ms.s1.Info().ID
	}
	return ms.s2.Info().ID
}

func TestPingFindsEveryMonitor(t *testing.T) {
	ms := startMesh(t)
	subj, err := micro.ControlSubject(micro.PingVerb, discovery.ServiceName, "")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range requestMany(t, ms.client, subj, nil, 2) {
		p := decode[micro.Ping](t, m)
		if p.Type != micro.PingResponseType || p.Name != discovery.ServiceName || p.Version != "1.2.3" {
			t.Errorf("ping = %+v", p)
		}
		if p.Metadata["prefix"] != "hb" || p.Metadata["hbmesh_version"] != "v1.2.3" ||
			!strings.HasPrefix(p.Metadata["host"], p.Metadata["monitor_id"]+".host") || p.Metadata["pid"] == "" {
			t.Errorf("metadata = %v", p.Metadata)
		}
		ids = append(ids, p.Metadata["monitor_id"])
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"mon-a", "mon-b"}) {
		t.Errorf("monitor ids = %v, want mon-a and mon-b", ids)
	}
}

func TestInfoListsBothEndpoints(t *testing.T) {
	ms := startMesh(t)
	subj, _ := micro.ControlSubject(micro.InfoVerb, discovery.ServiceName, "")
	want := map[string]string{
		"status": "hb.monitor.v1.status",
		"peers":  "hb.monitor.v1.peers",
	}
	for _, m := range requestMany(t, ms.client, subj, nil, 2) {
		info := decode[micro.Info](t, m)
		if info.Description == "" {
			t.Error("no description")
		}
		got := map[string]string{}
		for _, ep := range info.Endpoints {
			got[ep.Name] = ep.Subject
			if ep.QueueGroup != "" {
				t.Errorf("endpoint %s has queue group %q; every monitor must answer", ep.Name, ep.QueueGroup)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s endpoints = %v, want %v", info.Metadata["monitor_id"], got, want)
		}
	}
	if got := ms.s1.Info().Endpoints; len(got) != 2 {
		t.Errorf("Service.Info endpoints = %v", got)
	}
}

func TestPeersAnsweredByEveryMonitor(t *testing.T) {
	ms := startMesh(t)
	var mons []string
	for _, m := range requestMany(t, ms.client, subjects.Control("peers"), nil, 2) {
		r := decode[discovery.PeersResponse](t, m)
		mons = append(mons, r.Monitor)
		if r.Type != discovery.PeersResponseType || r.Truncated || r.Total != 1 || len(r.Peers) != 1 ||
			r.Instance == "" || r.Instance != ms.instance(r.Monitor) {
			t.Fatalf("reply = %+v", r)
		}
		p := r.Peers[0]
		if p.ID != "web-1" || p.Host != "web-1.example" || p.State != monitor.StateAlive ||
			p.IntervalMS != 100 || p.Version != "1.0.0" || p.Seq == 0 || p.Boot == "" || p.LastBeat.IsZero() {
			t.Errorf("%s: peer = %+v", r.Monitor, p)
		}
	}
	slices.Sort(mons)
	if !slices.Equal(mons, []string{"mon-a", "mon-b"}) {
		t.Errorf("monitors = %v", mons)
	}
}

func TestStatus(t *testing.T) {
	ms := startMesh(t)
	for _, m := range requestMany(t, ms.client, subjects.Control("status"), nil, 2) {
		r := decode[discovery.StatusResponse](t, m)
		if r.Type != discovery.StatusResponseType || !r.Ready || r.ReadyError != "" || !r.Connected || r.Impaired ||
			r.Peers != 1 || r.PeersByState[monitor.StateAlive] != 1 || len(r.PeersByState) != 4 || r.Transitions[monitor.StateAlive] != 1 ||
			r.Beats == 0 || r.Version != "v1.2.3" || r.Prefix != "hb" || r.Instance == "" || r.Instance != ms.instance(r.Monitor) {
			t.Errorf("status = %+v", r)
		}
		// The envelope and the monitor's status side by side, in one object.
		var flat map[string]json.RawMessage
		if err := json.Unmarshal(m.Data, &flat); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"type", "monitor", "instance", "prefix", "ready", "fast_path", "peers_by_state", "rejected", "stalled_ms"} {
			if _, ok := flat[k]; !ok {
				t.Errorf("status reply has no %q: %s", k, m.Data)
			}
		}
	}
}

func TestPeersRequestErrors(t *testing.T) {
	ms := startMesh(t)
	for _, body := range []string{`{"state":"zombie"}`, `{"limit":-1}`, `{"colour":"red"}`, `[1]`} {
		t.Run(body, func(t *testing.T) {
			for _, m := range requestMany(t, ms.client, subjects.Control("peers"), []byte(body), 2) {
				if code := m.Header.Get(micro.ErrorCodeHeader); code != "400" {
					t.Errorf("code = %q, header %v", code, m.Header)
				}
			}
		})
	}
}

// fleet is a Source with n synthetic peers: a stand-in for a monitor too
// big to build in a test, not for NATS.
type fleet struct{ peers []monitor.PeerInfo }

func newFleet(n int) *fleet {
	f := &fleet{}
	for i := range n {
		st := monitor.StateAlive
		if i%10 == 0 {
			st = monitor.StateDead
		}
		f.peers = append(f.peers, monitor.PeerInfo{
			ID: fmt.Sprintf("node-%05d", i), Host: fmt.Sprintf("node-%05d.dc1.example.com", i),
			State: st, Seq: uint64(i + 1), Boot: "0123456789abcdef", Interval: time.Second,
			Version: "1.0.0", Since: time.Unix(1700000000, 0), LastBeat: time.Unix(1700000000, 0),
		})
	}
	return f
}

func (f *fleet) ID() string                { return "big" }
func (f *fleet) Peers() []monitor.PeerInfo { return slices.Clone(f.peers) }

func (f *fleet) Stats() monitor.Stats { return monitor.Stats{} }
func (f *fleet) Ready() error         { return errors.New("synthetic") }

// TopPeers picks from a copy of every peer, as the monitor's answer is
// defined; the monitor's own TopPeers is checked against that in its
// package.
func (f *fleet) TopPeers(limit int, states ...monitor.State) ([]monitor.PeerInfo, int) {
	ps := slices.Clone(f.peers)
	if len(states) > 0 {
		ps = slices.DeleteFunc(ps, func(p monitor.PeerInfo) bool { return !slices.Contains(states, p.State) })
	}
	monitor.SortPeers(ps)
	return ps[:min(max(limit, 0), len(ps))], len(ps)
}

// TestPeersLimitFromRealMonitors: a request with a limit is answered
// from the monitor's TopPeers, in the same order and with the same total
// as the whole list cut.
func TestPeersLimitFromRealMonitors(t *testing.T) {
	ms := startMesh(t)
	for _, id := range []string{"web-10", "web-2"} {
		meshtest.StartNode(t, ms.url, id, fast)
	}
	for _, m := range []*monitor.Monitor{ms.m1, ms.m2} {
		natstest.Eventually(t, m.ID()+" sees three alive", func() bool {
			top, n := m.TopPeers(0, monitor.StateAlive)
			return n == 3 && len(top) == 0
		})
	}
	tests := []struct {
		body  string
		total int
		ids   []string
	}{
		{`{"limit":2}`, 3, []string{"web-1", "web-2"}},
		{`{"state":"alive","limit":5}`, 3, []string{"web-1", "web-2", "web-10"}},
		{`{"state":"dead","limit":2}`, 0, nil},
	}
	for _, tt := range tests {
		for _, m := range requestMany(t, ms.client, subjects.Control("peers"), []byte(tt.body), 2) {
			r := decode[discovery.PeersResponse](t, m)
			var ids []string
			for _, p := range r.Peers {
				ids = append(ids, p.ID)
			}
			if r.Total != tt.total || !slices.Equal(ids, tt.ids) {
				t.Errorf("%s from %s: total %d, peers %v; want %d, %v", tt.body, r.Monitor, r.Total, ids, tt.total, tt.ids)
			}
		}
	}
}

func TestPeersFilterLimitAndTruncation(t *testing.T) {
	const maxPayload = 64 << 10
	srv := natstest.Start(t, func(c *embedded.Config) {
		c.Options = func(o *server.Options) { o.MaxPayload = maxPayload }
	})
	nc := natstest.Connect(t, srv.ClientURL())
	svc, err := discovery.Register(nc, newFleet(1000), discovery.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	client := natstest.Connect(t, srv.ClientURL())

	tests := []struct {
		body            string
		total, n        int // n < 0: truncated, so only "fewer than total"
		truncated       bool
		firstID, lastID string
	}{
		{body: ``, total: 1000, n: -1, truncated: true, firstID: "node-00000"},
		{body: `{"state":"dead"}`, total: 100, n: 100, firstID: "node-00000", lastID: "node-00990"},
		{body: `{"state":"alive","limit":3}`, total: 900, n: 3, firstID: "node-00001", lastID: "node-00003"},
		{body: `{"limit":5}`, total: 1000, n: 5, firstID: "node-00000", lastID: "node-00040"},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			m := requestMany(t, client, subjects.Control("peers"), []byte(tt.body), 1)[0]
			if len(m.Data) > maxPayload {
				t.Fatalf("reply of %d bytes exceeds max payload %d", len(m.Data), maxPayload)
			}
			r := decode[discovery.PeersResponse](t, m)
			if r.Total != tt.total || r.Truncated != tt.truncated {
				t.Errorf("total %d truncated %v, want %d %v", r.Total, r.Truncated, tt.total, tt.truncated)
			}
			if tt.n >= 0 && len(r.Peers) != tt.n || tt.n < 0 && (len(r.Peers) == 0 || len(r.Peers) >= r.Total) {
				t.Fatalf("%d peers, want %d of %d", len(r.Peers), tt.n, r.Total)
			}
			if r.Peers[0].ID != tt.firstID || tt.lastID != "" && r.Peers[len(r.Peers)-1].ID != tt.lastID {
				t.Errorf("peers run %s..%s, want %s..%s", r.Peers[0].ID, r.Peers[len(r.Peers)-1].ID, tt.firstID, tt.lastID)
			}
			if tt.truncated {
				// Worst first: all 100 dead peers survive the cut.
				if got := r.Peers[99]; got.State != monitor.StateDead || r.Peers[100].State != monitor.StateAlive {
					t.Errorf("truncated reply is not worst first: %v then %v", got.State, r.Peers[100].State)
				}
			}
		})
	}
}

func TestRegisterRejectsBadConfig(t *testing.T) {
	srv := natstest.Start(t)
	nc := natstest.Connect(t, srv.ClientURL())
	_, err := discovery.Register(nc, newFleet(0), discovery.Config{Prefix: "hb.*"})
	if !errors.Is(err, cfgerr.ErrInvalid) || !strings.Contains(err.Error(), "Prefix") {
		t.Errorf("err = %v", err)
	}
	if _, err := discovery.Register(nil, newFleet(0), discovery.Config{}); !errors.Is(err, cfgerr.ErrInvalid) {
		t.Errorf("nil conn: err = %v", err)
	}
}

func TestServiceVersion(t *testing.T) {
	for in, want := range map[string]string{
		"1.2.3": "1.2.3", "v1.2.3": "1.2.3", "1.2.3-rc.1+abc": "1.2.3-rc.1+abc",
		"dev": "0.0.0", "": "0.0.0", "v1.2": "0.0.0", "1.2.3-dirty-4-gabc": "1.2.3-dirty-4-gabc",
	} {
		if got := discovery.ServiceVersion(in); got != want {
			t.Errorf("ServiceVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

// natsCLI returns the path of the real nats CLI (see natstest.Tool).
func natsCLI(t *testing.T) string {
	t.Helper()
	return natstest.Tool(t, "nats")
}

func TestNATSCLI(t *testing.T) {
	cli := natsCLI(t)
	ms := startMesh(t)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(cli, append([]string{"--server", ms.url, "--timeout", "5s"}, args...)...)
		// Keep the user's nats contexts out of the test.
		cmd.Env = append(os.Environ(), "NATS_CONTEXT=", "XDG_CONFIG_HOME="+t.TempDir(), "HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("nats %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	ls := run("micro", "ls")
	info := run("micro", "info", discovery.ServiceName)
	t.Logf("nats micro ls:\n%s\nnats micro info %s:\n%s", ls, discovery.ServiceName, info)
	for _, want := range []string{discovery.ServiceName, ms.s1.Info().ID, ms.s2.Info().ID, "1.2.3"} {
		if !strings.Contains(ls, want) {
			t.Errorf("micro ls lacks %q", want)
		}
	}
	// Without an id, info shows whichever instance answers first; with
	// one, it shows that instance, whose metadata names its monitor.
	if !strings.Contains(info, "monitor_id: mon-") {
		t.Errorf("micro info shows no monitor id")
	}
	for _, s := range []struct {
		svc *discovery.Service
		id  string
	}{{ms.s1, "mon-a"}, {ms.s2, "mon-b"}} {
		if out := run("micro", "info", discovery.ServiceName, s.svc.Info().ID); !strings.Contains(out, "monitor_id: "+s.id) {
			t.Errorf("micro info %s lacks monitor_id: %s:\n%s", s.svc.Info().ID, s.id, out)
		}
	}
	for _, want := range []string{"hb.monitor.v1.status", "hb.monitor.v1.peers"} {
		if !strings.Contains(info, want) {
			t.Errorf("micro info lacks %q", want)
		}
	}
}
