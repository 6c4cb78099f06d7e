package status

import (
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/internal/discovery"
	"github.com/hbmesh/hbmesh/monitor"
)

func TestMerge(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	peer := func(id string, st monitor.State, seq uint64) monitor.PeerJSON {
		return monitor.PeerJSON{ID: id, Host: id + ".h", State: st, Seq: seq, LastBeat: t0.Add(time.Duration(seq) * time.Second)}
	}
	reply := func(truncated bool, peers ...monitor.PeerJSON) *discovery.PeersResponse {
		return &discovery.PeersResponse{Peers: peers, Truncated: truncated}
	}
	tests := []struct {
		name    string
		replies map[string]*discovery.PeersResponse
		want    map[string]string // id → State
		split   map[string]bool
	}{
		{
			name:    "agree",
			replies: map[string]*discovery.PeersResponse{"a": reply(false, peer("x", monitor.StateAlive, 1)), "b": reply(false, peer("x", monitor.StateAlive, 2))},
			want:    map[string]string{"x": "alive"},
		},
		{
			name:    "different states",
			replies: map[string]*discovery.PeersResponse{"a": reply(false, peer("x", monitor.StateDead, 1)), "b": reply(false, peer("x", monitor.StateSuspect, 2))},
			want:    map[string]string{"x": StateSplit},
			split:   map[string]bool{"x": true},
		},
		{
			name:    "alive, missing from a complete table",
			replies: map[string]*discovery.PeersResponse{"a": reply(false, peer("x", monitor.StateAlive, 1), peer("y", monitor.StateAlive, 1)), "b": reply(false, peer("x", monitor.StateAlive, 1))},
			want:    map[string]string{"x": "alive", "y": StateSplit},
			split:   map[string]bool{"y": true},
		},
		{
			name:    "suspect, missing from a complete table",
			replies: map[string]*discovery.PeersResponse{"a": reply(false, peer("y", monitor.StateSuspect, 1)), "b": reply(false), "c": reply(false, peer("y", monitor.StateSuspect, 1))},
			want:    map[string]string{"y": StateSplit},
			split:   map[string]bool{"y": true},
		},
		{
			// A monitor started later never saw them, or forgot them
			// after its retention: no partition to show.
			name: "left or dead, missing from a complete table",
			replies: map[string]*discovery.PeersResponse{
				"a": reply(false, peer("y", monitor.StateLeft, 1), peer("z", monitor.StateDead, 1)),
				"b": reply(false, peer("y", monitor.StateLeft, 1), peer("z", monitor.StateDead, 1)),
				"c": reply(false),
			},
			want: map[string]string{"y": "left", "z": "dead"},
		},
		{
			name:    "dead and left disagree, missing or not",
			replies: map[string]*discovery.PeersResponse{"a": reply(false, peer("y", monitor.StateDead, 1)), "b": reply(false, peer("y", monitor.StateLeft, 1)), "c": reply(false)},
			want:    map[string]string{"y": StateSplit},
			split:   map[string]bool{"y": true},
		},
		{
			name:    "absent from a truncated table proves nothing",
			replies: map[string]*discovery.PeersResponse{"a": reply(false, peer("x", monitor.StateAlive, 1), peer("y", monitor.StateLeft, 1)), "b": reply(true, peer("x", monitor.StateAlive, 1))},
			want:    map[string]string{"x": "alive", "y": "left"},
		},
		{
			name:    "one monitor",
			replies: map[string]*discovery.PeersResponse{"a": reply(false, peer("x", monitor.StateDead, 1))},
			want:    map[string]string{"x": "dead"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mons []Monitor
			for id := range tt.replies {
				mons = append(mons, Monitor{ID: id, PeersAnswered: true})
			}
			rows := merge(mons, tt.replies)
			if len(rows) != len(tt.want) {
				t.Fatalf("rows = %+v", rows)
			}
			for _, r := range rows {
				if r.State != tt.want[r.ID] || r.Disagree != tt.split[r.ID] {
					t.Errorf("%s: state %q disagree %v, want %q %v (states %v)", r.ID, r.State, r.Disagree, tt.want[r.ID], tt.split[r.ID], r.States)
				}
				// Every monitor with a complete table has a say, missing
				// or not, split or not: the JSON shows who lacks the peer.
				for id, rep := range tt.replies {
					if _, ok := r.States[id]; !ok && !rep.Truncated {
						t.Errorf("%s: no state for monitor %s: %v", r.ID, id, r.States)
					}
				}
			}
		})
	}
}

func TestMergeKeepsFreshestAndSortsWorstFirst(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	replies := map[string]*discovery.PeersResponse{
		"a": {Peers: []monitor.PeerJSON{
			{ID: "b-alive", State: monitor.StateAlive}, {ID: "a-left", State: monitor.StateLeft},
			{ID: "z-dead", State: monitor.StateDead}, {ID: "m", State: monitor.StateAlive, Seq: 7, LastBeat: t0, Version: "old"},
		}},
		"b": {Peers: []monitor.PeerJSON{
			{ID: "b-alive", State: monitor.StateAlive}, {ID: "a-left", State: monitor.StateLeft},
			{ID: "z-dead", State: monitor.StateDead}, {ID: "m", State: monitor.StateSuspect, Seq: 9, LastBeat: t0.Add(time.Second), Version: "new"},
		}},
	}
	rows := merge([]Monitor{{ID: "a"}, {ID: "b"}}, replies)
	var order []string
	for _, r := range rows {
		order = append(order, r.ID)
	}
	if got, want := order, []string{"z-dead", "m", "b-alive", "a-left"}; len(got) != 4 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
		t.Errorf("order = %v, want %v", got, want)
	}
	if m := rows[1]; m.Seq != 9 || m.Version != "new" || m.Worst != monitor.StateSuspect {
		t.Errorf("m = %+v", m)
	}
}

func TestAge(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tt := range []struct {
		t    time.Time
		want string
	}{
		{time.Time{}, "-"},
		{now.Add(-1234 * time.Millisecond), "1.2s"},
		{now.Add(time.Second), "0.0s"},
		{now.Add(-90*time.Second - 400*time.Millisecond), "1m30s"},
	} {
		if got := age(now, tt.t); got != tt.want {
			t.Errorf("age(%v) = %q, want %q", now.Sub(tt.t), got, tt.want)
		}
	}
}

// Two monitors that last heard a peer at the same moment may still
// disagree on what it said (one heard a restart the other missed). The
// row must not take its host, seq, version and boot from whichever reply
// a map happens to yield first: the same replies give the same row.
func TestMergeTieOnLastBeatIsStable(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	say := func(host, boot, version string, seq uint64) *discovery.PeersResponse {
		return &discovery.PeersResponse{Peers: []monitor.PeerJSON{
			{ID: "web-1", State: monitor.StateAlive, Host: host, Boot: boot, Version: version, Seq: seq, LastBeat: t0},
		}}
	}
	replies := map[string]*discovery.PeersResponse{}
	mons := []Monitor{}
	for _, id := range []string{"m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8"} {
		replies[id] = say("host-"+id, "boot-"+id, "v-"+id, 3)
		mons = append(mons, Monitor{ID: id})
	}
	first := merge(mons, replies)[0]
	for range 50 {
		got := merge(mons, replies)[0]
		if got.Host != first.Host || got.Boot != first.Boot || got.Version != first.Version || got.Seq != first.Seq {
			t.Fatalf("same replies, different rows: %s/%s/%s then %s/%s/%s",
				first.Host, first.Boot, first.Version, got.Host, got.Boot, got.Version)
		}
	}
	// The rule: the monitors' order.
	if first.Host != "host-m1" {
		t.Errorf("tie broken towards %q, want the first monitor id's host-m1", first.Host)
	}
}
