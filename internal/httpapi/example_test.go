package httpapi_test

import (
	"fmt"
	"time"

	"github.com/hbmesh/hbmesh/internal/httpapi"
	"github.com/hbmesh/hbmesh/monitor"
)

// NewPeerJSON is what /api/peers serves for each peer; hbmesh status can
// decode the same type.
func ExampleNewPeerJSON() {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p := httpapi.NewPeerJSON(monitor.PeerInfo{
		ID: "web-1", State: monitor.StateSuspect, LastBeat: now.Add(-2500 * time.Millisecond),
		Interval: time.Second, History: 0b1100,
	}, now)
	fmt.Println(p.ID, p.State, p.LastBeatAgeMS, p.IntervalMS)
	fmt.Println(p.History)
	// Output:
	// web-1 suspect 2500 1000
	// 00110000000000000000000000000000
}
