package httpapi_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/internal/httpapi"
	"github.com/hbmesh/hbmesh/monitor"
)

// fakeSource is a plain in-memory Source for handler tests. (Integration
// with a real monitor on a real nats-server is in browser_test.go.)
type fakeSource struct {
	mu       sync.Mutex
	id       string
	peers    []monitor.PeerInfo
	stats    monitor.Stats
	notReady error
}

func (f *fakeSource) ID() string { return f.id }

func (f *fakeSource) Peers() []monitor.PeerInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]monitor.PeerInfo, len(f.peers))
	copy(out, f.peers)
	return out
}

// TopPeers is Peers filtered, sorted as the monitor sorts and cut.
func (f *fakeSource) TopPeers(limit int, states ...monitor.State) ([]monitor.PeerInfo, int) {
	ps := f.Peers()
	if len(states) > 0 {
		ps = slices.DeleteFunc(ps, func(p monitor.PeerInfo) bool { return !slices.Contains(states, p.State) })
	}
	monitor.SortPeers(ps)
	return ps[:min(max(limit, 0), len(ps))], len(ps)
}

func (f *fakeSource) Peer(id string) (monitor.PeerInfo, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.peers {
		if p.ID == id {
			return p, true
		}
	}
	return monitor.PeerInfo{}, false
}

func (f *fakeSource) Stats() monitor.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.stats
	s.Peers = map[monitor.State]int{}
	for _, p := range f.peers {
		s.Peers[p.State]++
	}
	return s
}

func (f *fakeSource) Ready() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.notReady
}

func (f *fakeSource) setReady(err error) {
	f.mu.Lock()
	f.notReady = err
	f.mu.Unlock()
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return t0 }

// newFake returns a source with n alive peers "p0000".. plus the given.
func newFake(n int, extra ...monitor.PeerInfo) *fakeSource {
	f := &fakeSource{id: "mon-1", stats: monitor.Stats{
		Connected:  true,
		Dropped:    7,
		Rejected:   map[string]uint64{"replay": 3},
		FastPath:   true,
		Advisories: map[string]uint64{"checked": 5, "not_node": 2},
		Checks:     map[string]uint64{"dead": 4, "alive": 1},
		ProbeRTT:   monitor.Histogram{Bounds: monitor.ProbeRTTBuckets(), Counts: make([]uint64, len(monitor.ProbeRTTBuckets()))},
		Overshoot:  monitor.Histogram{Bounds: monitor.OvershootBuckets(), Counts: make([]uint64, len(monitor.OvershootBuckets()))},
	}}
	for i := range n {
		f.peers = append(f.peers, monitor.PeerInfo{
			ID: fmt.Sprintf("p%04d", i), Host: "host", State: monitor.StateAlive,
			Since: t0.Add(-time.Minute), LastBeat: t0.Add(-time.Second), Interval: time.Second,
		})
	}
	f.peers = append(f.peers, extra...)
	return f
}

// newServer builds a Server over src and serves its Handler on an
// httptest server closed at the end of the test.
func newServer(t testing.TB, src httpapi.Source, mods ...func(*httpapi.Config)) (*httpapi.Server, *httptest.Server) {
	t.Helper()
	cfg := httpapi.DefaultConfig()
	cfg.Source = src
	cfg.Version = "v1.2.3"
	cfg.Now = fixedNow
	for _, m := range mods {
		m(&cfg)
	}
	s, err := httpapi.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	return do(t, http.MethodGet, url, nil)
}

func do(t *testing.T, method, url string, hdr http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, string(b)
}

// sseEvent is one parsed server-sent event.
type sseEvent struct {
	name, id, data string
}

// sseStream reads events from an open /api/events response.
type sseStream struct {
	resp *http.Response
	r    *bufio.Reader
}

func openSSE(t *testing.T, url string, hdr http.Header) *sseStream {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", url, resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	return &sseStream{resp: resp, r: bufio.NewReader(resp.Body)}
}

// next returns the next event that is not a status event (status events
// come on a timer and are skipped unless wantStatus).
func (s *sseStream) next(t *testing.T, wantStatus bool) sseEvent {
	t.Helper()
	for {
		ev, err := s.read()
		if err != nil {
			t.Fatalf("reading SSE: %v", err)
		}
		if ev.name == "status" && !wantStatus {
			continue
		}
		return ev
	}
}

func (s *sseStream) read() (sseEvent, error) {
	var ev sseEvent
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			if ev.name != "" || ev.data != "" {
				return ev, nil
			}
		case strings.HasPrefix(line, ":"), strings.HasPrefix(line, "retry:"):
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			ev.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			ev.data += strings.TrimPrefix(line, "data: ")
		default:
			return ev, errors.New("unexpected SSE line " + line)
		}
	}
}
