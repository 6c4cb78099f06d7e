package monitor_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/monitor"
)

// TestEventJSON pins the event JSON, which has no "prev" on a peer's
// first event, that `hbmesh monitor --json` prints
// and monitors publish on NATS: consumers parse it, so a change here is a
// protocol change (docs/PROTOCOL.md, "Events").
func TestEventJSON(t *testing.T) {
	at := time.Date(2026, 11, 25, 12, 0, 3, 10_000_000, time.UTC)
	tests := []struct {
		name    string
		ev      monitor.Event
		monitor string
		want    string
	}{
		{"first beat", monitor.Event{
			Time: at, ID: "web-1", Host: "web-1.example.com", State: monitor.StateAlive,
			Reason: monitor.ReasonFirstBeat, Boot: "b1", Seq: 1, Interval: time.Second,
		}, "", `{"time":"2026-11-25T12:00:03.01Z","id":"web-1","host":"web-1.example.com","state":"alive","reason":"first_beat","boot":"b1","seq":1,"interval_ms":1000,"restart":false}`},
		{"dead", monitor.Event{
			Time: at, ID: "web-1", Host: "web-1.example.com", State: monitor.StateDead, Prev: monitor.StateSuspect,
			Reason: monitor.ReasonTimeout, Boot: "b1", Seq: 17, Interval: time.Second,
		}, "mon-a", `{"time":"2026-11-25T12:00:03.01Z","id":"web-1","host":"web-1.example.com","state":"dead","prev":"suspect","reason":"timeout","boot":"b1","seq":17,"interval_ms":1000,"restart":false,"monitor":"mon-a"}`},
		{"restart", monitor.Event{
			Time: at, ID: "web-1", Host: "h", State: monitor.StateAlive, Prev: monitor.StateDead,
			Reason: monitor.ReasonRestarted, Boot: "b2", PrevBoot: "b1", Seq: 1, Interval: time.Second, Restart: true,
		}, "", `{"time":"2026-11-25T12:00:03.01Z","id":"web-1","host":"h","state":"alive","prev":"dead","reason":"restarted","boot":"b2","seq":1,"interval_ms":1000,"restart":true,"prev_boot":"b1"}`},
		{"conflict", monitor.Event{
			Time: at, ID: "web-1", Host: "h", State: monitor.StateAlive, Prev: monitor.StateAlive,
			Reason: monitor.ReasonConflict, Boot: "b2", PrevBoot: "b1", Seq: 3, Interval: time.Second, Conflict: true,
		}, "", `{"time":"2026-11-25T12:00:03.01Z","id":"web-1","host":"h","state":"alive","prev":"alive","reason":"conflict","boot":"b2","seq":3,"interval_ms":1000,"restart":false,"prev_boot":"b1","conflict":true}`},
		{"repeat", monitor.Event{
			Time: at, ID: "web-1", Host: "h", State: monitor.StateSuspect, Prev: monitor.StateAlive,
			Reason: monitor.ReasonSilent, Boot: "b1", Seq: 3, Interval: time.Second, Repeat: 2,
		}, "", `{"time":"2026-11-25T12:00:03.01Z","id":"web-1","host":"h","state":"suspect","prev":"alive","reason":"silent","boot":"b1","seq":3,"interval_ms":1000,"restart":false,"repeat":2}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(tt.ev.AppendJSON(nil, tt.monitor))
			if got != tt.want {
				t.Fatalf("AppendJSON:\n got %s\nwant %s", got, tt.want)
			}
			var back struct {
				State  monitor.State  `json:"state"`
				Prev   monitor.State  `json:"prev"`
				Reason monitor.Reason `json:"reason"`
			}
			if err := json.Unmarshal([]byte(got), &back); err != nil {
				t.Fatal(err)
			}
			if back.State != tt.ev.State || back.Prev != tt.ev.Prev || back.Reason != tt.ev.Reason {
				t.Errorf("decoded %+v, want state %v prev %v reason %v", back, tt.ev.State, tt.ev.Prev, tt.ev.Reason)
			}
		})
	}
}

// TestReasonJSON: each reason encodes as the bare name it always had,
// the same through AppendJSON and encoding/json.
func TestReasonJSON(t *testing.T) {
	want := map[monitor.Reason]string{
		monitor.ReasonFirstBeat: "first_beat", monitor.ReasonBeat: "beat",
		monitor.ReasonProbeAnswered: "probe_answered", monitor.ReasonSilent: "silent",
		monitor.ReasonTimeout: "timeout", monitor.ReasonGoodbye: "goodbye",
		monitor.ReasonRestarted: "restarted", monitor.ReasonConflict: "conflict",
	}
	for r, name := range want {
		b, err := json.Marshal(r)
		if err != nil || string(b) != `"`+name+`"` {
			t.Errorf("json.Marshal(%v) = %s, %v; want %q", r, b, err, name)
		}
		var back struct {
			Reason string `json:"reason"`
		}
		ev := monitor.Event{State: monitor.StateAlive, Reason: r}
		if err := json.Unmarshal(ev.AppendJSON(nil, ""), &back); err != nil || back.Reason != name {
			t.Errorf("AppendJSON reason = %q, %v; want %q", back.Reason, err, name)
		}
	}
}

// TestEventStringEscapesBoots: boot ids are the peer's own UTF-8, and
// Event.String is what `hbmesh monitor` prints to a terminal.
func TestEventStringEscapesBoots(t *testing.T) {
	at := time.Date(2026, 11, 25, 12, 0, 3, 10_000_000, time.UTC)
	ev := monitor.Event{
		Time: at, ID: "web-1", State: monitor.StateAlive, Prev: monitor.StateAlive, Reason: monitor.ReasonConflict,
		Boot: "b2\x1b[2J\r\n12:00:03.010 dead     db-1 timeout", PrevBoot: "b1", Conflict: true,
	}
	want := `12:00:03.010 alive    web-1 (was alive) conflict boots b1 and "b2\x1b[2J\r\n12:00:03.010 dead     db-1 timeout" both claim this id`
	if got := ev.String(); got != want {
		t.Errorf("String:\n got %s\nwant %s", got, want)
	}
}
