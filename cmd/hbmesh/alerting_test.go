package main

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/internal/events"
	"github.com/hbmesh/hbmesh/internal/meshtest"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/internal/promtest"
)

// TestMonitorAlertmanager: two `hbmesh monitor --alertmanager` and a
// real Alertmanager, behind a proxy that checks every post carries the
// --alert-header; a killed node gives one notification whose alert
// carries exactly the labels the flags give, and links to the dashboard.
// Its return resolves it: the resolved notification is a barrier behind
// which a second firing one would have come.
func TestMonitorAlertmanager(t *testing.T) {
	rcv := promtest.NewReceiver(t)
	am := promtest.Start(t, rcv, promtest.Config{})
	target, err := neturl.Parse(am.URL())
	if err != nil {
		t.Fatal(err)
	}
	var posts, withHeader atomic.Int64
	fwd := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		if r.Header.Get("X-Test") == "t0ken" {
			withHeader.Add(1)
		}
		fwd.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	srv := natstest.Start(t)
	url := srv.ClientURL()
	var mons []*proc
	for _, id := range []string{"m1", "m2"} {
		mon := startEnv(t, map[string]string{"AM_TOKEN": "t0ken"}, "monitor", "-s", url, "--id", id, "--no-memory",
			"--alertmanager", proxy.URL, "--alert-label", "cluster=cli", "--alert-resend", "200ms",
			"--alert-header", "X-Test=env:AM_TOKEN", "--external-url", "http://dash.example/")
		logValue(t, mon, "monitor started", "monitor")
		mons = append(mons, mon)
	}
	natstest.WaitInterest(t, srv, "hb.web-1")
	kill := meshtest.StartNode(t, url, "web-1", 100*time.Millisecond)
	waitFor(t, 10*time.Second, "both monitors to see web-1", func() bool {
		return strings.Contains(mons[0].stdout.String(), "web-1") && strings.Contains(mons[1].stdout.String(), "web-1")
	})
	kill()
	n := rcv.Next(t)
	want := map[string]string{"alertname": "HbmeshPeerDead", "peer": "web-1", "host": "web-1.example", "prefix": "hb", "cluster": "cli"}
	if n.Status != "firing" || len(n.Alerts) != 1 || !maps.Equal(n.Alerts[0].Labels, want) || n.Alerts[0].GeneratorURL != "http://dash.example/?q=web-1" {
		t.Fatalf("notification %+v, want one firing alert labelled %v", n, want)
	}
	if as := am.Alerts(t); len(as) != 1 || !as[0].EndsAt.After(time.Now()) {
		t.Fatalf("alerts %+v", as)
	}

	meshtest.StartNode(t, url, "web-1", 100*time.Millisecond)
	if n := rcv.Next(t); n.Status != "resolved" || !maps.Equal(n.Alerts[0].Labels, want) {
		t.Fatalf("notification %+v, want web-1 resolved", n)
	}
	if all := rcv.All(); len(all) != 2 {
		t.Errorf("%d notifications, want firing then resolved: %+v", len(all), all)
	}
	if p, h := posts.Load(), withHeader.Load(); p == 0 || h != p {
		t.Errorf("%d of %d posts carried X-Test: t0ken", h, p)
	}
}

// TestMonitorMetricsAddr: --metrics-addr alone serves /metrics, /livez
// and /readyz, and nothing of the dashboard or the API.
func TestMonitorMetricsAddr(t *testing.T) {
	srv := natstest.Start(t)
	mon := start(t, "monitor", "-s", srv.ClientURL(), "--id", "m1", "--no-memory", "--metrics-addr", "127.0.0.1:0")
	base := "http://" + logValue(t, mon, "metrics server listening", "addr")
	waitFor(t, 10*time.Second, "/readyz 200", func() bool {
		code, _ := httpGet(t, base+"/readyz")
		return code == http.StatusOK
	})
	if code, body := httpGet(t, base+"/metrics"); code != http.StatusOK || !strings.Contains(body, "hbmesh_dead_peers_unlisted 0") {
		t.Errorf("/metrics: %d\n%s", code, body)
	}
	for _, path := range []string{"/", "/api/peers", "/api/events"} {
		if code, _ := httpGet(t, base+path); code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, code)
		}
	}
	if strings.Contains(mon.stderr.String(), "http server listening") {
		t.Error("a dashboard server started without --http")
	}
}

// TestNotifyCommand: two monitors keep the event stream, two `hbmesh
// notify` share it; a killed node runs the hook once and posts one
// webhook, with the header read from a file; its return does the same.
func TestNotifyCommand(t *testing.T) {
	srv := natstest.Start(t, func(c *embedded.Config) { c.JetStream, c.StoreDir = true, t.TempDir() })
	url := srv.ClientURL()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("Bearer f1le-t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var posts []events.Payload
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Authorization"); got != "Bearer f1le-t0ken" {
			t.Errorf("Authorization %q", got)
		}
		var p events.Payload
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &p); err != nil {
			t.Errorf("payload %s: %v", b, err)
		}
		mu.Lock()
		posts = append(posts, p)
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	nPosts := func() int { mu.Lock(); defer mu.Unlock(); return len(posts) }

	for _, id := range []string{"m1", "m2"} {
		mon := start(t, "monitor", "-s", url, "--id", id, "--no-memory", "--events-stream", "EV")
		// notify needs the stream, which the first monitor creates.
		logValue(t, mon, "event stream", "stream")
	}
	log := filepath.Join(dir, "hook.log")
	for range 2 {
		w := start(t, "notify", "-s", url, "--stream", "EV", "--on-event", `echo "$HBMESH_PEER_ID $HBMESH_STATE $HBMESH_DELIVERY" >> "`+log+`"`,
			"--on-event-states", "dead,alive", "--webhook", hook.URL+"/hook", "--webhook-header", "Authorization=@"+tokenFile)
		logValue(t, w, "notify started", "stream")
	}
	natstest.WaitInterest(t, srv, "hb.web-1")
	kill := meshtest.StartNode(t, url, "web-1", 100*time.Millisecond)
	waitFor(t, 10*time.Second, "the first beat's hook", func() bool { return strings.Count(readFile(t, log), "alive") == 1 })
	kill()
	waitFor(t, 10*time.Second, "the death's hook and webhook", func() bool {
		return strings.Count(readFile(t, log), "dead") >= 1 && nPosts() >= 1
	})
	meshtest.StartNode(t, url, "web-1", 100*time.Millisecond)
	waitFor(t, 10*time.Second, "the recovery's hook and webhook", func() bool {
		return strings.Count(readFile(t, log), "alive") == 2 && nPosts() == 2
	})
	if got := readFile(t, log); got != "web-1 alive 1\nweb-1 dead 1\nweb-1 alive 1\n" {
		t.Errorf("hook log:\n%s", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(posts) != 2 || posts[0].Status != "firing" || posts[1].Status != "resolved" || posts[0].Alerts[0].Labels["peer"] != "web-1" {
		t.Errorf("webhooks %+v", posts)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}
