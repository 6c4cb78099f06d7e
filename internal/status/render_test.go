package status_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/internal/status"
	"github.com/hbmesh/hbmesh/monitor"
)

// TestRenderSharedID: two monitors under the id "vm" are two columns,
// vm@A and vm@B, and two footer lines; the "!" column names each as its
// column does; the summary counts monitors and ids.
func TestRenderSharedID(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r := &status.Report{
		Time: now,
		Monitors: []status.Monitor{
			{ID: "mon-a", Instances: 1, Instance: "X", Status: true, Ready: true, FastPath: true, PeersAnswered: true, Peers: 2},
			{ID: "vm", Instances: 2, Instance: "A", Status: true, Ready: true, FastPath: true, PeersAnswered: true, Peers: 1},
			{ID: "vm", Instances: 2, Instance: "B", Status: true, ReadyError: "catching up", PeersAnswered: true, Peers: 2},
		},
		Peers: []status.Peer{
			{ID: "web-2", Host: "h2", State: "dead", Worst: monitor.StateDead, LastBeat: now,
				States: map[string]string{"mon-a": "dead", "vm@A": status.StateMissing, "vm@B": "dead"}},
			{ID: "web-1", Host: "h1", State: status.StateSplit, Disagree: true, Worst: monitor.StateDead, LastBeat: now,
				States: map[string]string{"mon-a": "alive", "vm@A": "alive", "vm@B": "dead"}},
		},
		Warnings: []string{`2 monitors answer as "vm" (instances A, B): give each its own --id`},
	}
	var out bytes.Buffer
	if err := status.Render(&out, r); err != nil {
		t.Fatal(err)
	}
	want := `ID     HOST  STATE  !                                   LAST BEAT  SEQ  VERSION  mon-a  vm@A  vm@B
web-2  h2    dead                                       0.0s       0             D      -     D
web-1  h1    SPLIT  ! mon-a=alive vm@A=alive vm@B=dead  0.0s       0             A      A     D

2 peers, 3 monitors under 2 ids, monitors disagree on 1:
  mon-a  ready                   2 peers  
  vm@A   ready                   1 peer   
  vm@B   NOT READY: catching up  2 peers  
warning: 2 monitors answer as "vm" (instances A, B): give each its own --id
`
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}
