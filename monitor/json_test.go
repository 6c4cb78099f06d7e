package monitor_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/monitor"
)

// PeerJSON is what /api/peers serves for each peer, what discovery
// replies carry and what restart memory keeps.
func ExamplePeerInfo_JSON() {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p := monitor.PeerInfo{
		ID: "web-1", State: monitor.StateSuspect, LastBeat: now.Add(-2500 * time.Millisecond),
		Interval: time.Second, History: 0b1100,
	}
	j := p.JSON(now)
	fmt.Println(j.ID, j.State, j.LastBeatAgeMS, j.IntervalMS)
	fmt.Println(j.History)
	// Output:
	// web-1 suspect 2500 1000
	// 00110000000000000000000000000000
}

// TestPeerJSONRoundTrip: a snapshot in whole milliseconds (microseconds
// for the probe RTT) comes back from its JSON as it was, every field
// included; and the JSON has every field, in milliseconds.
func TestPeerJSONRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p := monitor.PeerInfo{
		ID: "web-1", Host: "web-1.example", State: monitor.StateDead, Since: t0.Add(-time.Minute),
		Reason: monitor.ReasonDisconnected, LastBeat: t0.Add(-1500 * time.Millisecond), Seq: 17, Boot: "b1", PID: 4242,
		Interval: 2 * time.Second, ProbeRTT: 1234 * time.Microsecond, Version: "v1",
		Labels: map[string]string{"az": "eu-1"}, Conflict: true, ClockSkew: -30 * time.Millisecond,
		History: 0b1011 | 1<<31,
	}
	p.LastSeen = p.LastBeat
	b, err := json.Marshal(p.JSON(t0))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range []string{`"interval_ms":2000`, `"probe_rtt_ms":1.234`, `"clock_skew_ms":-30`, `"last_beat_age_ms":1500`,
		`"state":"dead"`, `"reason":"disconnected"`, `"pid":4242`, `"history":"1101` + strings.Repeat("0", 27) + `1"`} {
		if !strings.Contains(string(b), kv) {
			t.Errorf("JSON lacks %s: %s", kv, b)
		}
	}
	var j monitor.PeerJSON
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	if got := j.Info(); !reflect.DeepEqual(got, p) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, p)
	}
	// A peer without labels has {} in its JSON, not null.
	if b, _ := json.Marshal((&monitor.PeerInfo{ID: "x"}).JSON(t0)); !strings.Contains(string(b), `"labels":{}`) {
		t.Errorf("no labels: %s", b)
	}
}

// TestStatusJSON: every counter lands in its own field, durations in
// milliseconds, every state is a key even with no peers in it, and the
// readiness error is kept.
func TestStatusJSON(t *testing.T) {
	st := monitor.Stats{
		Beats: 1, Rejected: map[string]uint64{"flood": 2, "replay": 3},
		Transitions: map[monitor.State]uint64{monitor.StateDead: 4, monitor.StateAlive: 5},
		Peers:       map[monitor.State]int{monitor.StateAlive: 6, monitor.StateSuspect: 7},
		ProbesSent:  8, ProbesAnswered: 9, ProbesFailed: 10, Evicted: 11, Forgotten: 12, Restarts: 13,
		Conflicts: 14, Stalls: 15, StalledFor: 1600 * time.Millisecond, Outages: 17, Dropped: 18,
		BacklogDeferrals: 19, Connected: true, FastPath: true,
	}
	j := st.JSON(errors.New("catching up"))
	j.Monitor, j.Prefix, j.Version, j.Time = "mon-1", "hb", "v1", time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"monitor":"mon-1","prefix":"hb","version":"v1","time":"2026-03-01T12:00:00Z",` +
		`"ready":false,"ready_error":"catching up","connected":true,"impaired":false,"fast_path":true,` +
		`"peers":13,"peers_by_state":{"alive":6,"dead":0,"left":0,"suspect":7},` +
		`"transitions":{"alive":5,"dead":4,"left":0,"suspect":0},"beats":1,"rejected":5,` +
		`"probes_sent":8,"probes_answered":9,"probes_failed":10,"evicted":11,"forgotten":12,"restarts":13,` +
		`"conflicts":14,"stalls":15,"stalled_ms":1600,"outages":17,"dropped":18}`
	if string(b) != want {
		t.Errorf("JSON:\n got %s\nwant %s", b, want)
	}
	var back monitor.StatusJSON
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, j) {
		t.Errorf("round trip: %v\n got %+v\nwant %+v", err, back, j)
	}
	if j := st.JSON(nil); !j.Ready || j.ReadyError != "" {
		t.Errorf("ready: %+v", j)
	}
}

// TestSortPeers: worst state first, then ids in natural order.
func TestSortPeers(t *testing.T) {
	ps := []monitor.PeerInfo{
		{ID: "web-10", State: monitor.StateAlive}, {ID: "web-2", State: monitor.StateAlive},
		{ID: "db-1", State: monitor.StateLeft}, {ID: "web-9", State: monitor.StateDead},
		{ID: "api-1", State: monitor.StateSuspect}, {ID: "web-1", State: monitor.StateAlive},
		{ID: "web-01", State: monitor.StateAlive},
	}
	monitor.SortPeers(ps)
	var got []string
	for _, p := range ps {
		got = append(got, p.ID)
	}
	if want := []string{"web-9", "api-1", "web-1", "web-01", "web-2", "web-10", "db-1"}; !slices.Equal(got, want) {
		t.Errorf("order = %v, want %v", got, want)
	}
	if c := monitor.ComparePeers(monitor.StateAlive, "web-1", monitor.StateAlive, "web-1"); c != 0 {
		t.Errorf("one peer compares %d with itself", c)
	}
}
