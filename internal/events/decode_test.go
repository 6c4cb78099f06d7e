package events_test

import (
	"errors"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/internal/events"
	"github.com/hbmesh/hbmesh/monitor"
)

func TestDecodeEventRoundTrip(t *testing.T) {
	for _, ev := range lifecycle("web-1") {
		ev.Time = ev.Time.Add(123456789 * time.Nanosecond)
		ev.Interval = 1500 * time.Millisecond
		for _, mon := range []string{"", "mon-a"} {
			got, gotMon, err := events.DecodeEvent(ev.AppendJSON(nil, mon))
			if err != nil || gotMon != mon || got != ev {
				t.Fatalf("DecodeEvent(%s) = %+v, %q, %v; want %+v", ev.AppendJSON(nil, mon), got, gotMon, err, ev)
			}
		}
	}
	ev := lifecycle("db")[3]
	ev.Restart, ev.PrevBoot, ev.Conflict, ev.Repeat, ev.Host = true, "b0", true, 2, "h\x00\u2028\"x"
	if got, _, err := events.DecodeEvent(ev.AppendJSON(nil, "m")); err != nil || got != ev {
		t.Fatalf("got %+v, %v; want %+v", got, err, ev)
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
	} {
		if _, _, err := events.DecodeEvent([]byte(in)); !errors.Is(err, events.ErrBadEvent) {
			t.Errorf("DecodeEvent(%q) = %v, want ErrBadEvent", in, err)
		}
	}
}

// FuzzDecodeEvent: any bytes decode or fail with ErrBadEvent, never
// panic; what decodes re-encodes to something that decodes to the same.
func FuzzDecodeEvent(f *testing.F) {
	for _, ev := range lifecycle("web-1") {
		f.Add(ev.AppendJSON(nil, "mon-a"))
	}
	f.Add([]byte(`{"time":"2025-03-01T12:00:00Z","id":"a","state":"dead","repeat":3,"conflict":true}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, mon, err := events.DecodeEvent(data)
		if err != nil {
			if !errors.Is(err, events.ErrBadEvent) {
				t.Fatalf("error %v does not wrap ErrBadEvent", err)
			}
			return
		}
		if ev.State == monitor.StateUnknown {
			t.Fatalf("decoded an event without a state: %+v", ev)
		}
		again, mon2, err := events.DecodeEvent(ev.AppendJSON(nil, mon))
		if err != nil || mon2 != mon || again.ID != ev.ID || again.State != ev.State || again.Seq != ev.Seq || !again.Time.Equal(ev.Time) {
			t.Fatalf("%q → %+v re-decodes to %+v, %v", data, ev, again, err)
		}
	})
}
