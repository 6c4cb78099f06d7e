package status_test

import (
	"os"
	"time"

	"github.com/hbmesh/hbmesh/internal/status"
	"github.com/hbmesh/hbmesh/monitor"
)

// A report as Gather builds it, rendered as `hbmesh status` prints it:
// mon-a has convicted db-1, which mon-b still thinks alive.
func ExampleRender() {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r := &status.Report{
		Time: now,
		Monitors: []status.Monitor{
			{ID: "mon-a", Version: "1.4.0", Status: true, Ready: true, FastPath: true, PeersAnswered: true, Peers: 2},
			{ID: "mon-b", Version: "1.4.0", Status: true, ReadyError: "monitor: NATS connection down", PeersAnswered: true, Peers: 2},
		},
		Peers: []status.Peer{
			{
				ID: "db-1", Host: "db-1.dc1", State: status.StateSplit, Disagree: true, Worst: monitor.StateDead,
				States:   map[string]string{"mon-a": "dead", "mon-b": "alive"},
				LastBeat: now.Add(-4200 * time.Millisecond), Seq: 812, Version: "1.4.0",
			},
			{
				ID: "web-1", Host: "web-1.dc1", State: "alive", Worst: monitor.StateAlive,
				States:   map[string]string{"mon-a": "alive", "mon-b": "alive"},
				LastBeat: now.Add(-300 * time.Millisecond), Seq: 9031, Version: "1.4.0",
			},
		},
	}
	_ = status.Render(os.Stdout, r)
	// Output:
	// ID     HOST       STATE  !                         LAST BEAT  SEQ   VERSION  mon-a  mon-b
	// db-1   db-1.dc1   SPLIT  ! mon-a=dead mon-b=alive  4.2s       812   1.4.0    D      A
	// web-1  web-1.dc1  alive                            0.3s       9031  1.4.0    A      A
	//
	// 2 peers, 2 monitors, monitors disagree on 1:
	//   mon-a  ready                                     2 peers  1.4.0
	//   mon-b  NOT READY: monitor: NATS connection down  2 peers  1.4.0
}
