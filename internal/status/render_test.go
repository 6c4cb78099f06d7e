package status_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/internal/status"
	"github.com/hbmesh/hbmesh/monitor"
)

// sharedReport is what two monitors under the id "vm" say, as a report
// whose column shows instance shown and whose Others hold the other one:
// A sees web-1 alive and never knew web-2; B sees web-1 dead and web-2
// dead.
func sharedReport(shown string) *status.Report {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	says := map[string]map[string]string{
		"A": {"web-1": "alive", "web-2": status.StateMissing},
		"B": {"web-1": "dead", "web-2": "dead"},
	}
	other := map[string]string{"A": "B", "B": "A"}[shown]
	r := &status.Report{
		Time: now,
		Monitors: []status.Monitor{{
			ID: "vm", Status: true, Ready: true, PeersAnswered: true, Peers: len(says[shown]),
			Instances: 2, Instance: shown, InstanceIDs: []string{"A", "B"},
			Others: []status.Instance{{ID: other, Status: true, Ready: true, PeersAnswered: true}},
		}},
	}
	for _, id := range []string{"web-1", "web-2"} {
		p := status.Peer{ID: id, Host: id, Worst: monitor.StateDead, LastBeat: now, States: map[string]string{"vm": says[shown][id]}}
		if says[other][id] != says[shown][id] {
			p.SharedStates = []status.InstanceState{{Monitor: "vm", Instance: other, State: says[other][id]}}
		}
		p.State, p.Disagree = "dead", false
		if id == "web-1" {
			p.State, p.Disagree = status.StateSplit, true
		}
		r.Peers = append(r.Peers, p)
	}
	return r
}

// TestRenderSharedID: where monitors share an id, the "!" column names
// every instance that says something, the column's too, so who says what
// reads the same whichever instance fills the column (another does when
// it misses a round of `hbmesh watch`). It flags "!" only a
// disagreement: an instance that never knew a dead peer is listed, not
// flagged, as a "-" in a column of its own would be.
func TestRenderSharedID(t *testing.T) {
	for _, shown := range []string{"A", "B"} {
		var out bytes.Buffer
		if err := status.Render(&out, sharedReport(shown), status.RenderOptions{}); err != nil {
			t.Fatal(err)
		}
		rows := map[string]string{}
		for _, line := range strings.Split(out.String(), "\n") {
			if id, _, ok := strings.Cut(line, " "); ok {
				rows[id] = line
			}
		}
		for id, want := range map[string]string{
			"web-1": "  SPLIT  ! vm@A=alive vm@B=dead  ",
			"web-2": "  dead   vm@A=missing vm@B=dead  ",
		} {
			if !strings.Contains(rows[id], want) {
				t.Errorf("column shows %s: %s row lacks %q:\n%s", shown, id, want, out.String())
			}
		}
		if !strings.Contains(out.String(), "\n2 peers, 2 monitors under 1 id, ") {
			t.Errorf("summary does not say 2 monitors under 1 id:\n%s", out.String())
		}
	}
}

// TestRenderSharedIDFooter: the footer names an instance under a shared
// id that cannot be trusted as the "!" column does, "?" for one without
// an instance id.
func TestRenderSharedIDFooter(t *testing.T) {
	r := sharedReport("A")
	r.Monitors[0].Others = append(r.Monitors[0].Others, status.Instance{Status: true, ReadyError: "catching up", PeersAnswered: true})
	var out bytes.Buffer
	if err := status.Render(&out, r, status.RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	if want := "showing instance A; instance ?: NOT READY: catching up  "; !strings.Contains(out.String(), want) {
		t.Errorf("footer lacks %q:\n%s", want, out.String())
	}
}

// TestRenderSharedIDSameInstance: of two replies that claim one instance
// id (a forger can claim any), the column's is named first.
func TestRenderSharedIDSameInstance(t *testing.T) {
	r := sharedReport("A")
	r.Monitors[0].Others[0].ID = "A"
	r.Peers[0].SharedStates[0].Instance = "A"
	var out bytes.Buffer
	if err := status.Render(&out, r, status.RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	if want := "  SPLIT  ! vm@A=alive vm@A=dead  "; !strings.Contains(out.String(), want) {
		t.Errorf("web-1 row lacks %q:\n%s", want, out.String())
	}
}
