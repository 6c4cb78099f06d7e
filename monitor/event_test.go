package monitor_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/monitor"
)

// TestEventJSON pins the event JSON, which has no "prev" on a peer's
// first event, that `hbmesh monitor --json` prints
// and monitors publish on NATS: consumers parse it, so a change here is a
// protocol change (docs/PROTOCOL.md, "Events"). DecodeEvent reads each
// back as it was.
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
		{"dead with its last beat", monitor.Event{
			Time: at, ID: "web-1", Host: "web-1.example.com", State: monitor.StateDead, Prev: monitor.StateSuspect,
			Reason: monitor.ReasonTimeout, Boot: "b1", Seq: 17, Interval: time.Second, LastBeat: at.Add(-4*time.Second - 250*time.Millisecond),
		}, "mon-a", `{"time":"2026-11-25T12:00:03.01Z","id":"web-1","host":"web-1.example.com","state":"dead","prev":"suspect","reason":"timeout","boot":"b1","seq":17,"interval_ms":1000,"restart":false,"last_beat":"2026-11-25T11:59:58.76Z","monitor":"mon-a"}`},
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
			back, mon, err := monitor.DecodeEvent([]byte(got))
			if err != nil || back != tt.ev || mon != tt.monitor {
				t.Errorf("DecodeEvent = %+v, %q, %v; want %+v, %q", back, mon, err, tt.ev, tt.monitor)
			}
		})
	}
}

// TestDecodeEventKeepsThePeersBytes: a host or boot is the peer's own
// UTF-8, escaped by AppendJSON and restored by DecodeEvent.
func TestDecodeEventKeepsThePeersBytes(t *testing.T) {
	ev := monitor.Event{
		Time: time.Date(2026, 11, 25, 12, 0, 3, 123456789, time.UTC), ID: "db", Host: "h\x00\u2028\"x", State: monitor.StateAlive,
		Prev: monitor.StateDead, Reason: monitor.ReasonRestarted, Boot: "b\x1b1", PrevBoot: "b0", Seq: 9, Interval: 1500 * time.Millisecond,
		Restart: true, Conflict: true, Repeat: 2,
	}
	if got, mon, err := monitor.DecodeEvent(ev.AppendJSON(nil, "m")); err != nil || got != ev || mon != "m" {
		t.Fatalf("got %+v, %q, %v; want %+v", got, mon, err, ev)
	}
}

func TestDecodeEventRejects(t *testing.T) {
	for _, in := range []string{
		``, `{`, `[]`, `null`,
		`{"time":"2025-03-01T12:00:00Z","state":"dead"}`,
		`{"time":"2025-03-01T12:00:00Z","id":"a.b","state":"dead"}`,
		`{"time":"2025-03-01T12:00:00Z","id":"a","state":"zombie"}`,
		`{"time":"2025-03-01T12:00:00Z","id":"a"}`,
		`{"id":"a","state":"dead"}`,
		`{"time":"2025-03-01T12:00:00Z","id":"a","state":"dead","interval_ms":-1}`,
		`{"time":"2025-03-01T12:00:00Z","id":"a","state":"dead","monitor":"x y"}`,
		`{"time":"9999-12-31T23:00:00-05:00","id":"a","state":"dead"}`,
		`{"time":"2025-03-01T12:00:00Z","id":"a","state":"dead","last_beat":"9999-12-31T23:00:00-05:00"}`,
		`{"time":"2025-03-01T12:00:00Z","id":"a","state":"dead","last_beat":"yesterday"}`,
	} {
		if _, _, err := monitor.DecodeEvent([]byte(in)); !errors.Is(err, monitor.ErrBadEvent) {
			t.Errorf("DecodeEvent(%q) = %v, want ErrBadEvent", in, err)
		}
	}
}

// FuzzDecodeEvent: any bytes decode or fail with ErrBadEvent, never
// panic; what decodes re-encodes to something that decodes to the same.
func FuzzDecodeEvent(f *testing.F) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, st := range monitor.States() {
		ev := monitor.Event{Time: at, ID: "web-1", Host: "h", State: st, Prev: monitor.StateAlive, Reason: monitor.ReasonBeat, Boot: "b", Seq: 3, Interval: time.Second}
		f.Add(ev.AppendJSON(nil, "mon-a"))
	}
	f.Add([]byte(`{"time":"2025-03-01T12:00:00Z","id":"a","state":"dead","repeat":3,"conflict":true}`))
	f.Add([]byte(`{"time":"2025-03-01T12:00:00Z","id":"a","state":"dead","last_beat":"2025-03-01T06:59:56.5-05:00"}`))
	f.Add([]byte(`{"time":"9999-12-31T23:00:00-05:00","id":"a","state":"dead"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, mon, err := monitor.DecodeEvent(data)
		if err != nil {
			if !errors.Is(err, monitor.ErrBadEvent) {
				t.Fatalf("error %v does not wrap ErrBadEvent", err)
			}
			return
		}
		if ev.State == monitor.StateUnknown {
			t.Fatalf("decoded an event without a state: %+v", ev)
		}
		again, mon2, err := monitor.DecodeEvent(ev.AppendJSON(nil, mon))
		if err != nil || mon2 != mon || again.ID != ev.ID || again.State != ev.State || again.Seq != ev.Seq || !again.Time.Equal(ev.Time) || !again.LastBeat.Equal(ev.LastBeat) {
			t.Fatalf("%q → %+v re-decodes to %+v, %v", data, ev, again, err)
		}
	})
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
