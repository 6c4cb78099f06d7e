package monitor

import (
	"maps"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/wire"
)

// TestSnapshotsParseLabels checks that every snapshot, which parses the
// peers' labels only after letting go of the monitor's lock, hands them
// out parsed: Peers, TopPeers and Peer alike.
func TestSnapshotsParseLabels(t *testing.T) {
	m, clk := offlineClocked(t)
	want := map[string]map[string]string{
		"web-1": {"role": "web", "az": "eu-1a"},
		"web-2": {"role": "web", "note": "a \"quoted\" \u00e9t\u00e9"},
		"db-1":  nil,
	}
	for id, labels := range want {
		b := wire.Beat{V: wire.Version, ID: id, Host: id + ".example", Boot: "boot-1", Seq: 1, TS: clk.Now(),
			IntervalMS: 1000, Status: wire.StatusAlive, Labels: labels}
		m.onBeats([]*nats.Msg{{Subject: m.subj.Beat(id), Data: wire.AppendBeat(nil, &b)}})
	}
	check := func(how string, ps []PeerInfo) {
		t.Helper()
		if len(ps) != len(want) {
			t.Fatalf("%s: %d peers, want %d", how, len(ps), len(want))
		}
		for _, p := range ps {
			if !maps.Equal(p.Labels, want[p.ID]) || p.rawLabels != "" {
				t.Errorf("%s: %s has labels %v (raw %q), want %v", how, p.ID, p.Labels, p.rawLabels, want[p.ID])
			}
		}
	}
	check("Peers", m.Peers())
	top, _ := m.TopPeers(10)
	check("TopPeers", top)
	var one []PeerInfo
	for id := range want {
		p, ok := m.Peer(id)
		if !ok {
			t.Fatalf("Peer(%q) not found", id)
		}
		one = append(one, p)
	}
	check("Peer", one)
}
