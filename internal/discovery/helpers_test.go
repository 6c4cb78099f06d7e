package discovery_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/hbmesh/hbmesh/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	fast     = 100 * time.Millisecond // node beat interval
	deadline = 10 * time.Second       // bound on any wait; passing tests never reach it
)

var subjects = wire.MustSubjects(wire.DefaultPrefix)

// requestMany publishes one request to subj and returns the first want
// replies, failing the test if fewer arrive within deadline.
func requestMany(t *testing.T, nc *nats.Conn, subj string, body []byte, want int) []*nats.Msg {
	t.Helper()
	inbox := nc.NewInbox()
	ch := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe(inbox, ch)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest(subj, inbox, body); err != nil {
		t.Fatal(err)
	}
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	var out []*nats.Msg
	for len(out) < want {
		select {
		case m := <-ch:
			out = append(out, m)
		case <-timer.C:
			t.Fatalf("%s: %d of %d replies within %v", subj, len(out), want, deadline)
		}
	}
	return out
}

func decode[T any](t *testing.T, m *nats.Msg) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(m.Data, &v); err != nil {
		t.Fatalf("decode %s reply %q: %v", m.Subject, m.Data, err)
	}
	return v
}
