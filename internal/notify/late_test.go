package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hbmesh/hbmesh/internal/events"
	"github.com/hbmesh/hbmesh/internal/notify"
	"github.com/hbmesh/hbmesh/internal/syncio"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/wire"
)

// record writes ev into the stream as a monitor does, with msgID as its
// Nats-Msg-Id, and returns its stream sequence.
func record(t *testing.T, js jetstream.JetStream, ev monitor.Event, monitorID, msgID string) uint64 {
	t.Helper()
	msg := &nats.Msg{
		Subject: "hb.events." + ev.State.String() + "." + ev.ID,
		Data:    ev.AppendJSON(nil, monitorID),
		Header:  nats.Header{jetstream.MsgIDHeader: {msgID}},
	}
	ack, err := js.PublishMsg(context.Background(), msg)
	if err != nil || ack.Duplicate {
		t.Fatalf("publish %s: %+v, %v", msgID, ack, err)
	}
	return ack.Sequence
}

// TestLateReportsAreNoNews: a monitor that reports a transition the log
// already holds — the same one after the stream's duplicate window (it
// was cut off from NATS meanwhile), or one from an older view of the same
// boot (restarted from restart memory after the peer died while it was
// down) — does not make notify act again. Everything else still runs,
// including the peer's next death.
func TestLateReportsAreNoNews(t *testing.T) {
	srv := startJS(t)
	url := srv.ClientURL()
	publisher(t, url, "mon-a") // creates the stream as monitors do
	js := jsFor(t, url)
	log := filepath.Join(t.TempDir(), "log")
	n := startNotifier(t, url, func(c *notify.Config) {
		c.Command = `echo "$HBMESH_STATE $HBMESH_SEQ $HBMESH_MONITOR" >> "` + log + `"`
	})
	waitConsumer(t, url, n.ConsumerName(notify.OutputExec), 0)

	ev := func(st, prev monitor.State, reason monitor.Reason, seq uint64) monitor.Event {
		e := deadEvent("web-1", seq)
		e.State, e.Prev, e.Reason = st, prev, reason
		return e
	}
	news := func(e monitor.Event, mon string) uint64 { return record(t, js, e, mon, events.MsgID(&e)) }
	news(ev(monitor.StateAlive, monitor.StateUnknown, monitor.ReasonFirstBeat, 1), "mon-a")
	news(ev(monitor.StateSuspect, monitor.StateAlive, monitor.ReasonSilent, 9), "mon-a")
	dead := ev(monitor.StateDead, monitor.StateSuspect, monitor.ReasonTimeout, 9)
	news(dead, "mon-a")
	// mon-b, restarted from memory saved at seq 5, judges the silent peer.
	news(ev(monitor.StateSuspect, monitor.StateAlive, monitor.ReasonSilent, 5), "mon-b")
	news(ev(monitor.StateDead, monitor.StateSuspect, monitor.ReasonTimeout, 5), "mon-b")
	// mon-c reports the same death after the duplicate window.
	record(t, js, dead, "mon-c", "after-the-window-"+events.MsgID(&dead))
	// The peer comes back and dies again: news.
	news(ev(monitor.StateAlive, monitor.StateDead, monitor.ReasonBeat, 12), "mon-a")
	last := news(ev(monitor.StateDead, monitor.StateSuspect, monitor.ReasonTimeout, 20), "mon-a")

	waitConsumer(t, url, n.ConsumerName(notify.OutputExec), last)
	want := []string{"alive 1 mon-a", "suspect 9 mon-a", "dead 9 mon-a", "alive 12 mon-a", "dead 20 mon-a"}
	if got := lines(t, log); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("hook runs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if st := n.Stats()[notify.OutputExec]; st.Sent != 5 || st.Duplicates != 3 {
		t.Fatalf("stats %+v, want 5 sent and 3 duplicates", st)
	}
}

// TestWithoutDirectGetsEverythingRuns: a stream created without direct
// gets (by hand, or by an older monitor) cannot say what came before an
// event; notify says so once and handles every record, as before.
func TestWithoutDirectGetsEverythingRuns(t *testing.T) {
	srv := startJS(t)
	url := srv.ClientURL()
	js := jsFor(t, url)
	cfg := events.StreamConfig(stream, wire.MustSubjects(wire.DefaultPrefix), 1)
	cfg.AllowDirect = false
	if _, err := js.CreateStream(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "log")
	var logs syncio.Writer
	n := startNotifier(t, url, func(c *notify.Config) {
		c.Command = `echo "$HBMESH_STATE $HBMESH_SEQ" >> "` + log + `"`
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	waitConsumer(t, url, n.ConsumerName(notify.OutputExec), 0)
	dead := deadEvent("web-1", 9)
	record(t, js, dead, "mon-a", events.MsgID(&dead))
	late := deadEvent("web-1", 5)
	last := record(t, js, late, "mon-b", events.MsgID(&late))
	waitConsumer(t, url, n.ConsumerName(notify.OutputExec), last)
	if got := strings.Join(lines(t, log), ","); got != "dead 9,dead 5" {
		t.Fatalf("hook runs %q, want both records handled", got)
	}
	if !strings.Contains(logs.String(), "the event stream does not allow direct gets") {
		t.Fatalf("no warning:\n%s", logs.String())
	}
}

// TestRestartAsTheStreamSawIt: a node dies and a new process takes its id
// while one monitor has declared the old one dead and the other, slower,
// only suspects it. Whichever monitor's report of the new boot the
// stream keeps, notify acts on the stream's view: the webhook resolves
// the death the stream recorded even when the recovery it kept says
// "was suspect", and a death of the old boot recorded after the new one
// took over pages nobody.
func TestRestartAsTheStreamSawIt(t *testing.T) {
	for _, tc := range []struct {
		name      string
		deadFirst bool
		want      []string // webhook statuses
	}{
		{"death recorded first", true, []string{"firing", "resolved"}},
		{"new boot recorded first", false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startJS(t)
			url := srv.ClientURL()
			publisher(t, url, "mon-a")
			js := jsFor(t, url)
			got := make(chan string, 8)
			rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var pl events.Payload
				b, _ := io.ReadAll(r.Body)
				if err := json.Unmarshal(b, &pl); err != nil {
					t.Errorf("payload %s: %v", b, err)
				}
				got <- pl.Status
			}))
			t.Cleanup(rcv.Close)
			n := startNotifier(t, url, func(c *notify.Config) { c.WebhookURL = rcv.URL })
			waitConsumer(t, url, n.ConsumerName(notify.OutputWebhook), 0)

			news := func(e monitor.Event, mon string) uint64 { return record(t, js, e, mon, events.MsgID(&e)) }
			first := deadEvent("web-1", 1)
			first.State, first.Prev, first.Reason = monitor.StateAlive, monitor.StateUnknown, monitor.ReasonFirstBeat
			news(first, "mon-a")
			suspect := deadEvent("web-1", 9)
			suspect.State, suspect.Prev, suspect.Reason = monitor.StateSuspect, monitor.StateAlive, monitor.ReasonSilent
			news(suspect, "mon-a")
			dead := deadEvent("web-1", 9)
			// mon-b had the old boot suspect, not dead, when the new one beat.
			back := deadEvent("web-1", 1)
			back.Boot, back.PrevBoot, back.Restart = "boot-web-1b", dead.Boot, true
			back.State, back.Prev, back.Reason = monitor.StateAlive, monitor.StateSuspect, monitor.ReasonRestarted
			var last uint64
			if tc.deadFirst {
				news(dead, "mon-a")
				last = news(back, "mon-b")
			} else {
				news(back, "mon-b")
				last = news(dead, "mon-a")
			}
			waitConsumer(t, url, n.ConsumerName(notify.OutputWebhook), last)
			var statuses []string
			for len(got) > 0 {
				statuses = append(statuses, <-got)
			}
			if !slices.Equal(statuses, tc.want) {
				t.Fatalf("webhook statuses %q, want %q", statuses, tc.want)
			}
		})
	}
}
