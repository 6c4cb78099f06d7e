package events_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/monitor"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitTimeout bounds every wait. It is generous for -race on a loaded
// machine; passing tests never wait this long.
const waitTimeout = 15 * time.Second

// startJS starts an embedded server with JetStream and connects to it.
func startJS(t *testing.T) (*embedded.Server, *nats.Conn) {
	t.Helper()
	s := natstest.Start(t, func(c *embedded.Config) {
		c.JetStream = true
		c.StoreDir = t.TempDir()
	})
	return s, natstest.Connect(t, s.ClientURL())
}

// run starts a sink's Run and, when the test ends, cancels it and checks
// it returned nil within natstest.Timeout. The returned stop does the
// same earlier; it is idempotent.
func run(t *testing.T, name string, fn func(context.Context) error) (stop func()) {
	t.Helper()
	return natstest.Run(t, name+": Run", fn)
}

// eventually polls cond until it holds or waitTimeout passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// lifecycle returns a plausible transition sequence of one peer.
func lifecycle(id string) []monitor.Event {
	base := monitor.Event{ID: id, Host: id + ".example", Boot: "boot-" + id, Interval: time.Second}
	steps := []struct {
		st, prev monitor.State
		reason   monitor.Reason
		seq      uint64
	}{
		{monitor.StateAlive, monitor.StateUnknown, monitor.ReasonFirstBeat, 1},
		{monitor.StateSuspect, monitor.StateAlive, monitor.ReasonSilent, 7},
		{monitor.StateDead, monitor.StateSuspect, monitor.ReasonTimeout, 7},
		{monitor.StateAlive, monitor.StateDead, monitor.ReasonBeat, 12},
		{monitor.StateLeft, monitor.StateAlive, monitor.ReasonGoodbye, 20},
	}
	out := make([]monitor.Event, len(steps))
	var lastBeat time.Time
	for i, s := range steps {
		ev := base
		ev.Time = t0.Add(time.Duration(i) * time.Second)
		ev.State, ev.Prev, ev.Reason, ev.Seq = s.st, s.prev, s.reason, s.seq
		if s.reason == monitor.ReasonFirstBeat || s.reason == monitor.ReasonBeat || s.reason == monitor.ReasonGoodbye {
			lastBeat = ev.Time
		}
		ev.LastBeat = lastBeat
		out[i] = ev
	}
	return out
}

// newLogger logs everything, as text, to w.
func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// hangingServer is a receiver that never answers: each request blocks
// until the test ends or its client gives up. arrived gets a value when
// the first request is in.
func hangingServer(t *testing.T) (url string, arrived <-chan struct{}) {
	t.Helper()
	release := make(chan struct{})
	in := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case in <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-req.Context().Done():
		}
	}))
	// Cleanups run last-in first-out: unblock the handlers, then close.
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	return srv.URL, in
}
