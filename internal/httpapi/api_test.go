package httpapi_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/internal/cfgerr"
	"github.com/hbmesh/hbmesh/internal/httpapi"
	"github.com/hbmesh/hbmesh/monitor"
)

func mixedFleet() *fakeSource {
	at := func(id, host string, st monitor.State, labels map[string]string) monitor.PeerInfo {
		return monitor.PeerInfo{ID: id, Host: host, State: st, Since: t0.Add(-time.Minute),
			LastBeat: t0.Add(-1500 * time.Millisecond), Interval: time.Second, Labels: labels,
			ProbeRTT: 1500 * time.Microsecond, History: 0b1011}
	}
	return newFake(0,
		at("web-2", "h2", monitor.StateAlive, map[string]string{"role": "web"}),
		at("db-1", "h9", monitor.StateLeft, nil),
		at("web-1", "h1", monitor.StateDead, map[string]string{"role": "web", "az": "eu-1"}),
		at("cache-1", "h3", monitor.StateSuspect, nil),
		at("api-1", "h4", monitor.StateDead, nil),
	)
}

func peerIDs(t *testing.T, body string) []string {
	t.Helper()
	var l httpapi.PeerList
	if err := json.Unmarshal([]byte(body), &l); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	ids := []string{}
	for _, p := range l.Peers {
		ids = append(ids, p.ID)
	}
	return ids
}

func TestPeersSortedAndFiltered(t *testing.T) {
	_, ts := newServer(t, mixedFleet())
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{"api-1", "web-1", "cache-1", "web-2", "db-1"}},
		{"?state=dead", []string{"api-1", "web-1"}},
		{"?state=dead,suspect", []string{"api-1", "web-1", "cache-1"}},
		{"?q=web", []string{"web-1", "web-2"}},
		{"?q=h9", []string{"db-1"}},
		{"?q=az%3Deu", []string{"web-1"}},
		{"?q=ROLE%3DWEB&state=alive", []string{"web-2"}},
		{"?q=nothing", []string{}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			resp, body := get(t, ts.URL+"/api/peers"+tc.query)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if got := peerIDs(t, body); !slices.Equal(got, tc.want) {
				t.Errorf("ids %v, want %v", got, tc.want)
			}
		})
	}
	resp, _ := get(t, ts.URL+"/api/peers?state=zombie")
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown state: status %d, want 400", resp.StatusCode)
	}
	// A misspelt parameter must not quietly return every peer.
	resp, body := get(t, ts.URL+"/api/peers?states=dead")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `unknown parameter \"states\"`) {
		t.Errorf("unknown parameter: status %d %s, want 400 naming it", resp.StatusCode, body)
	}
}

// TestPeersLimit: limit keeps the first peers in the usual order, after
// the filter, and matched still counts every peer the filter let through.
func TestPeersLimit(t *testing.T) {
	_, ts := newServer(t, mixedFleet())
	for _, tc := range []struct {
		query   string
		want    []string
		matched int
	}{
		{"", []string{"api-1", "web-1", "cache-1", "web-2", "db-1"}, 5},
		{"?limit=2", []string{"api-1", "web-1"}, 5},
		{"?limit=0", []string{}, 5},
		{"?limit=5", []string{"api-1", "web-1", "cache-1", "web-2", "db-1"}, 5},
		{"?limit=1000", []string{"api-1", "web-1", "cache-1", "web-2", "db-1"}, 5},
		{"?state=dead,suspect&limit=2", []string{"api-1", "web-1"}, 3},
		{"?limit=1&q=web", []string{"web-1"}, 2},
		{"?q=nothing&limit=3", []string{}, 0},
	} {
		t.Run(tc.query, func(t *testing.T) {
			resp, body := get(t, ts.URL+"/api/peers"+tc.query)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			var l httpapi.PeerList
			if err := json.Unmarshal([]byte(body), &l); err != nil {
				t.Fatal(err)
			}
			if got := peerIDs(t, body); !slices.Equal(got, tc.want) || l.Matched != tc.matched {
				t.Errorf("ids %v matched %d, want %v matched %d", got, l.Matched, tc.want, tc.matched)
			}
		})
	}
}

// TestPeersLimitRejected: a limit that is not a whole number of peers is
// a 400 naming it, in the same JSON as every other API error, never a
// silently unlimited list.
func TestPeersLimitRejected(t *testing.T) {
	_, ts := newServer(t, mixedFleet())
	for _, tc := range []struct{ query, want string }{
		{"?limit=-1", `limit "-1": want a whole number of peers, 0 or more`},
		{"?limit=abc", `limit "abc": want a whole number of peers, 0 or more`},
		{"?limit=", `limit "": want a whole number of peers, 0 or more`},
		{"?limit=2.5", `limit "2.5": want a whole number of peers, 0 or more`},
		{"?limit=1e3", `limit "1e3": want a whole number of peers, 0 or more`},
		{"?limit=99999999999999999999", `limit "99999999999999999999": want a whole number of peers, 0 or more`},
		{"?limit=1&limit=2", "limit given 2 times: give it once"},
		{"?limits=1", `unknown parameter "limits": want state, q or limit`},
	} {
		t.Run(tc.query, func(t *testing.T) {
			resp, body := get(t, ts.URL+"/api/peers"+tc.query)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want JSON", ct)
			}
			var e struct{ Error string }
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error != tc.want {
				t.Errorf("error %q (%v), want %q", e.Error, err, tc.want)
			}
		})
	}
}

func TestPeerJSONShape(t *testing.T) {
	_, ts := newServer(t, mixedFleet())
	resp, body := get(t, ts.URL+"/api/peers/web-1")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var p monitor.PeerJSON
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatal(err)
	}
	want := "1101" + strings.Repeat("0", 28)
	if p.State != monitor.StateDead || p.LastBeatAgeMS != 1500 || p.IntervalMS != 1000 || p.ProbeRTTMS != 1.5 ||
		p.History != want || p.Labels["az"] != "eu-1" {
		t.Errorf("unexpected peer %+v", p)
	}
	for _, key := range []string{`"last_beat_age_ms"`, `"interval_ms"`, `"probe_rtt_ms"`, `"clock_skew_ms"`, `"history"`, `"since"`, `"last_beat"`} {
		if !strings.Contains(body, key) {
			t.Errorf("body lacks %s: %s", key, body)
		}
	}
}

func TestPeerUnknownIs404JSON(t *testing.T) {
	_, ts := newServer(t, mixedFleet())
	resp, body := get(t, ts.URL+"/api/peers/nope")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var e struct{ Error string }
	if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.Contains(e.Error, "nope") {
		t.Errorf("body %q (%v)", body, err)
	}
}

// TestAPINotFoundIsJSON: an /api/ path no route takes, such as a peer
// with an empty id, gets a JSON 404, not the mux's plain text.
func TestAPINotFoundIsJSON(t *testing.T) {
	_, ts := newServer(t, mixedFleet())
	for _, path := range []string{"/api/peers/", "/api/peers/a/b", "/api/nope", "/api/"} {
		resp, body := get(t, ts.URL+path)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", path, resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s: Content-Type %q, want JSON", path, ct)
		}
		var e struct{ Error string }
		if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
			t.Errorf("%s: body %q is not a JSON error (%v)", path, body, err)
		}
	}
}

func TestReadyz(t *testing.T) {
	src := newFake(1)
	src.setReady(errors.New("monitor: NATS connection down"))
	_, ts := newServer(t, src)
	resp, body := get(t, ts.URL+"/readyz")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "NATS connection down") {
		t.Errorf("not ready: %d %q", resp.StatusCode, body)
	}
	src.setReady(nil)
	resp, body = get(t, ts.URL+"/readyz")
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(body) != "ready" {
		t.Errorf("ready: %d %q", resp.StatusCode, body)
	}
	resp, body = get(t, ts.URL+"/livez")
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Errorf("livez: %d %q", resp.StatusCode, body)
	}
}

func TestStatus(t *testing.T) {
	src := mixedFleet()
	src.setReady(errors.New("self check failing"))
	_, ts := newServer(t, src)
	_, body := get(t, ts.URL+"/api/status")
	var st monitor.StatusJSON
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.Monitor != "mon-1" || st.Prefix != "hb" || st.Version != "v1.2.3" || st.Ready || st.ReadyError != "self check failing" ||
		!st.Connected || st.PeersByState[monitor.StateDead] != 2 || st.PeersByState[monitor.StateLeft] != 1 || st.Rejected != 3 || st.Dropped != 7 {
		t.Errorf("status %s", body)
	}
}

func TestReadOnlyMethodsAndHeaders(t *testing.T) {
	_, ts := newServer(t, mixedFleet())
	paths := []string{"/", "/app.js", "/app.css", "/metrics", "/livez", "/readyz", "/api/peers", "/api/peers/web-1", "/api/status", "/api/events"}
	for _, path := range paths {
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
			resp, _ := do(t, m, ts.URL+path, nil)
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s: %d Allow=%q", m, path, resp.StatusCode, resp.Header.Get("Allow"))
			}
		}
		resp, _ := do(t, http.MethodHead, ts.URL+path, nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("HEAD %s: %d", path, resp.StatusCode)
		}
		for h, want := range map[string]string{
			"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
		} {
			if got := resp.Header.Get(h); got != want {
				t.Errorf("HEAD %s: %s %q, want %q", path, h, got, want)
			}
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'self'") {
			t.Errorf("HEAD %s: CSP %q", path, csp)
		}
		if strings.HasPrefix(path, "/api/") && resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("HEAD %s: Cache-Control %q", path, resp.Header.Get("Cache-Control"))
		}
	}
	resp, body := get(t, ts.URL+"/")
	if !strings.Contains(body, `src="app.js"`) || strings.Contains(body, "<script>") || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("index: %s", body)
	}
	if resp, _ := get(t, ts.URL+"/nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/nope: %d", resp.StatusCode)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*httpapi.Config)
		want string
	}{
		{"no source", func(c *httpapi.Config) { c.Source = nil }, "invalid httpapi config: Source is nil"},
		{"cap", func(c *httpapi.Config) { c.PerPeerMetricsCap = -1 }, "invalid httpapi config: PerPeerMetricsCap -1 must be within [1, 100000]"},
		{"buffer", func(c *httpapi.Config) { c.EventBuffer = 1 << 21 }, "invalid httpapi config: EventBuffer 2097152 must be within [1, 1048576]"},
		{"clients", func(c *httpapi.Config) { c.MaxSSEClients = -5 }, "invalid httpapi config: MaxSSEClients -5 must be within [1, 10000]"},
		{"status", func(c *httpapi.Config) { c.StatusInterval = time.Millisecond }, "invalid httpapi config: StatusInterval 1ms must be within [10ms, 1m]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := httpapi.DefaultConfig()
			cfg.Source = newFake(0)
			tc.mod(&cfg)
			_, err := httpapi.New(cfg)
			if err == nil || err.Error() != tc.want || !errors.Is(err, cfgerr.ErrInvalid) {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := httpapi.New(httpapi.Config{Source: newFake(0)}); err != nil {
		t.Errorf("zero config with a source: %v", err)
	}
}

// TestLoopbackRefusesForeignHost: on a loopback address the server answers
// only to localhost and IP literals, so a DNS-rebinding page cannot read
// it through the operator's browser.
func TestLoopbackRefusesForeignHost(t *testing.T) {
	_, ts := newServer(t, mixedFleet()) // httptest listens on 127.0.0.1
	for _, tc := range []struct {
		host string
		want int
	}{
		{"attacker.example", http.StatusMisdirectedRequest},
		{"attacker.example:8080", http.StatusMisdirectedRequest},
		{"127.0.0.1.nip.io", http.StatusMisdirectedRequest},
		{"localhost:8080", http.StatusOK},
		{"LOCALHOST", http.StatusOK},
		{"127.0.0.1:8080", http.StatusOK},
		{"[::1]:8080", http.StatusOK},
	} {
		req, err := http.NewRequest(http.MethodGet, ts.URL+"/api/peers", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = tc.host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("Host %q: %d %s, want %d", tc.host, resp.StatusCode, body, tc.want)
		}
		if tc.want != http.StatusOK && !strings.Contains(string(body), "refused") {
			t.Errorf("Host %q: body %s does not say why", tc.host, body)
		}
	}
}
