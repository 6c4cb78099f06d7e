package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/internal/httpapi"
	"github.com/hbmesh/hbmesh/monitor"
)

func event(id string, st monitor.State) monitor.Event {
	return monitor.Event{Time: t0, ID: id, Host: "h", State: st, Prev: monitor.StateAlive, Reason: monitor.ReasonTimeout, Boot: "b1", Seq: 7, Interval: time.Second}
}

// wantTransition reads the next non-status event and checks it is the
// transition of peer id with the given SSE id.
func wantTransition(t *testing.T, s *sseStream, peer string, id uint64) {
	t.Helper()
	ev := s.next(t, false)
	if ev.name != "transition" || ev.id != strconv.FormatUint(id, 10) {
		t.Fatalf("got event %q id %q (%s), want transition id %d", ev.name, ev.id, ev.data, id)
	}
	var got struct{ ID, State, Monitor string }
	if err := json.Unmarshal([]byte(ev.data), &got); err != nil || got.ID != peer || got.Monitor != "mon-1" {
		t.Fatalf("transition %s (%v), want peer %s", ev.data, err, peer)
	}
}

func snapshotID(t *testing.T, s *sseStream) uint64 {
	t.Helper()
	ev := s.next(t, false)
	if ev.name != "snapshot" {
		t.Fatalf("first event %q, want snapshot", ev.name)
	}
	var l httpapi.PeerList
	if err := json.Unmarshal([]byte(ev.data), &l); err != nil || l.Monitor != "mon-1" {
		t.Fatalf("snapshot %s: %v", ev.data, err)
	}
	id, err := strconv.ParseUint(ev.id, 10, 64)
	if err != nil {
		t.Fatalf("snapshot id %q: %v", ev.id, err)
	}
	return id
}

func TestSSESnapshotThenTransitions(t *testing.T) {
	srv, ts := newServer(t, mixedFleet())
	s := openSSE(t, ts.URL+"/api/events", nil)
	ev := s.next(t, false)
	if ev.name != "snapshot" {
		t.Fatalf("first event %q", ev.name)
	}
	if ids := peerIDs(t, ev.data); len(ids) != 5 || ids[0] != "api-1" {
		t.Errorf("snapshot peers %v", ids)
	}
	base, _ := strconv.ParseUint(ev.id, 10, 64)
	if st := s.next(t, true); st.name != "status" {
		t.Errorf("second event %q, want status", st.name)
	}
	srv.Publish(event("web-1", monitor.StateDead))
	wantTransition(t, s, "web-1", base+1)
	srv.Publish(event("web-2", monitor.StateSuspect))
	wantTransition(t, s, "web-2", base+2)
}

// TestSSESnapshotLimit: ?limit=N bounds the snapshot as it bounds
// /api/peers, with matched counting the whole table; a bad limit is a
// 400 JSON error before any stream is opened.
func TestSSESnapshotLimit(t *testing.T) {
	_, ts := newServer(t, mixedFleet())
	s := openSSE(t, ts.URL+"/api/events?limit=2", nil)
	ev := s.next(t, false)
	if ev.name != "snapshot" {
		t.Fatalf("first event %q, want snapshot", ev.name)
	}
	var l httpapi.PeerList
	if err := json.Unmarshal([]byte(ev.data), &l); err != nil {
		t.Fatal(err)
	}
	if ids := peerIDs(t, ev.data); fmt.Sprint(ids) != "[api-1 web-1]" || l.Matched != 5 {
		t.Errorf("snapshot %v matched %d, want [api-1 web-1] matched 5", ids, l.Matched)
	}
	resp, body := get(t, ts.URL+"/api/events?limit=-3")
	var e struct{ Error string }
	if resp.StatusCode != http.StatusBadRequest || json.Unmarshal([]byte(body), &e) != nil ||
		e.Error != `limit "-3": want a whole number of peers, 0 or more` {
		t.Errorf("bad limit: status %d, body %s", resp.StatusCode, body)
	}
}

func TestSSEResume(t *testing.T) {
	srv, ts := newServer(t, mixedFleet(), func(c *httpapi.Config) { c.EventBuffer = 8 })
	a := openSSE(t, ts.URL+"/api/events", nil)
	base := snapshotID(t, a)
	for i := range 3 {
		srv.Publish(event(fmt.Sprint("e", i+1), monitor.StateDead))
	}
	for i := range 3 {
		wantTransition(t, a, fmt.Sprint("e", i+1), base+uint64(i)+1)
	}
	a.resp.Body.Close()
	srv.Publish(event("e4", monitor.StateDead)) // missed
	srv.Publish(event("e5", monitor.StateDead)) // missed

	t.Run("header", func(t *testing.T) {
		b := openSSE(t, ts.URL+"/api/events", http.Header{"Last-Event-Id": {strconv.FormatUint(base+3, 10)}})
		wantTransition(t, b, "e4", base+4) // no snapshot: exactly the missed ones
		wantTransition(t, b, "e5", base+5)
	})
	t.Run("query", func(t *testing.T) {
		b := openSSE(t, ts.URL+"/api/events?lastEventId="+strconv.FormatUint(base+4, 10), nil)
		wantTransition(t, b, "e5", base+5)
		srv.Publish(event("e6", monitor.StateDead))
		wantTransition(t, b, "e6", base+6)
	})
	t.Run("up to date", func(t *testing.T) {
		b := openSSE(t, ts.URL+"/api/events", http.Header{"Last-Event-Id": {strconv.FormatUint(base+6, 10)}})
		srv.Publish(event("e7", monitor.StateDead))
		wantTransition(t, b, "e7", base+7)
	})
	for name, last := range map[string]string{
		"too old":     strconv.FormatUint(base, 10), // the ring of 8 now starts after it... see below
		"future":      strconv.FormatUint(base+1000, 10),
		"not numeric": "abc",
	} {
		t.Run(name, func(t *testing.T) {
			if name == "too old" {
				for range 8 {
					srv.Publish(event("filler", monitor.StateAlive))
				}
			}
			b := openSSE(t, ts.URL+"/api/events", http.Header{"Last-Event-Id": {last}})
			snapshotID(t, b)
		})
	}
}

func TestSSEMaxClients(t *testing.T) {
	_, ts := newServer(t, newFake(1), func(c *httpapi.Config) { c.MaxSSEClients = 2 })
	for range 2 {
		snapshotID(t, openSSE(t, ts.URL+"/api/events", nil))
	}
	resp, body := get(t, ts.URL+"/api/events")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("third client: %d %q Retry-After=%q", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
}

// TestSSESlowClientDoesNotBlockPublish connects a client that never reads
// and publishes far more than its queue and socket buffers hold.
func TestSSESlowClientDoesNotBlockPublish(t *testing.T) {
	srv, ts := newServer(t, newFake(1))
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	fast := openSSE(t, ts.URL+"/api/events", nil)
	base := snapshotID(t, fast)

	const n = 10000
	done := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		for i := range n {
			srv.Publish(event(fmt.Sprint("p", i), monitor.StateDead))
		}
		done <- time.Since(start)
	}()
	select {
	case d := <-done:
		t.Logf("%d events published in %v", n, d)
	case <-time.After(5 * time.Second):
		t.Fatal("Publish blocked on a client that does not read")
	}
	// The reading client may have been dropped too if it fell behind, but
	// whatever it got is in order with no gaps.
	for want := base + 1; want <= base+10; {
		ev, err := fast.read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.name == "status" {
			continue
		}
		if ev.id != strconv.FormatUint(want, 10) {
			t.Fatalf("fast client got id %s, want %d", ev.id, want)
		}
		want++
	}
}

// TestServeStreamsOutliveTimeouts runs the real http.Server with tight
// timeouts: an SSE stream must outlive them while ordinary requests still
// work, and cancelling ctx must end the stream and return.
func TestServeStreamsOutliveTimeouts(t *testing.T) {
	cfg := httpapi.DefaultConfig()
	cfg.Source = newFake(3)
	cfg.ReadTimeout = 100 * time.Millisecond
	cfg.WriteTimeout = 100 * time.Millisecond
	cfg.StatusInterval = 20 * time.Millisecond
	srv, err := httpapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	defer func() {
		cancel()
		<-served
	}()
	url := "http://" + ln.Addr().String()

	s := openSSE(t, url+"/api/events", nil)
	snapshotID(t, s)
	deadline := time.Now().Add(500 * time.Millisecond) // 5x both timeouts
	for n := 0; time.Now().Before(deadline); n++ {
		if ev := s.next(t, true); ev.name != "status" {
			t.Fatalf("event %q, want status", ev.name)
		}
	}
	srv.Publish(event("late", monitor.StateDead))
	if ev := s.next(t, false); ev.name != "transition" {
		t.Fatalf("after the timeouts: %q", ev.name)
	}
	if resp, _ := get(t, url+"/livez"); resp.StatusCode != http.StatusOK {
		t.Errorf("livez %d", resp.StatusCode)
	}

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
		served <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	for {
		if _, err := s.read(); err != nil {
			break // the stream was ended by the shutdown
		}
	}
}
