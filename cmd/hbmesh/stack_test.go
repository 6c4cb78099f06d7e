package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/internal/meshtest"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/monitor"
)

// logValue waits for a log line on p's stderr with key=value after msg
// and returns value.
func logValue(t *testing.T, p *proc, msg, key string) string {
	t.Helper()
	re := regexp.MustCompile(regexp.QuoteMeta(msg) + `.*\b` + key + `=(\S+)`)
	var v string
	waitFor(t, 10*time.Second, msg+" "+key, func() bool {
		m := re.FindStringSubmatch(p.stderr.String())
		if m != nil {
			v = m[1]
		}
		return m != nil
	})
	return v
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestMonitorHTTP(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.ClientURL()
	mon := start(t, "monitor", "-s", url, "--id", "m1", "--http", "127.0.0.1:0", "--per-peer-metrics")
	base := "http://" + logValue(t, mon, "http server listening", "addr")
	if n := strings.Count(mon.stderr.String(), "listening"); n != 1 {
		t.Errorf("%d lines say the HTTP server is listening, want 1:\n%s", n, mon.stderr)
	}
	natstest.WaitInterest(t, srv, "hb.anything")
	start(t, "node", "-s", url, "--id", "web-1", "--interval", "100ms")

	waitFor(t, 10*time.Second, "/readyz 200", func() bool {
		code, _ := httpGet(t, base+"/readyz")
		return code == http.StatusOK
	})
	waitFor(t, 10*time.Second, "web-1 in /api/peers", func() bool {
		_, body := httpGet(t, base+"/api/peers")
		return strings.Contains(body, `"id":"web-1"`)
	})
	if _, body := httpGet(t, base+"/metrics"); !strings.Contains(body, `hbmesh_peer_up{`) {
		t.Errorf("/metrics lacks per-peer series")
	}
	if code := mon.stop(t); code != 0 {
		t.Fatalf("monitor exit %d; stderr:\n%s", code, mon.stderr)
	}
	if _, err := http.Get(base + "/livez"); err == nil {
		t.Error("HTTP still served after the monitor stopped")
	}
}

func TestMonitorHTTPBusyAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv := natstest.Start(t)
	code, _, stderr := runSync(t, nil, "monitor", "-s", srv.ClientURL(), "--http", ln.Addr().String(), "--log-level", "error")
	if code != exitFailure || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "hbmesh monitor: --http: listen tcp") {
		t.Fatalf("exit %d, stderr %q; want 1 and one --http line", code, stderr)
	}
}

// TestBeatQueueZero: --beat-queue 0 is the automatic size, as its help says.
func TestBeatQueueZero(t *testing.T) {
	srv := natstest.Start(t)
	mon := start(t, "monitor", "-s", srv.ClientURL(), "--id", "m1", "--beat-queue", "0")
	logValue(t, mon, "NATS connected", "server")
	if code := mon.stop(t); code != 0 {
		t.Fatalf("monitor exit %d; stderr:\n%s", code, mon.stderr)
	}
}

func TestHealthcheck(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ready\n") }))
	defer ok.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not ready: NATS disconnected", http.StatusServiceUnavailable)
	}))
	defer bad.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := "http://" + ln.Addr().String() + "/readyz"
	ln.Close()

	tests := []struct {
		name, url string
		code      int
		stderr    string
	}{
		{"200", ok.URL + "/readyz", exitOK, ""},
		{"503", bad.URL + "/readyz", exitFailure, "503 Service Unavailable: not ready: NATS disconnected"},
		{"unreachable", gone, exitFailure, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runSync(t, nil, "healthcheck", "--url", tt.url, "--timeout", "2s")
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.code, stderr)
			}
			if tt.code == exitOK {
				if !strings.HasPrefix(stdout, "healthy: 200") || stderr != "" {
					t.Errorf("stdout %q stderr %q", stdout, stderr)
				}
				return
			}
			if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "hbmesh healthcheck: ") || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr %q, want one line with %q", stderr, tt.stderr)
			}
		})
	}
	// The URL also comes from the environment.
	code, _, _ := runSync(t, func(k string) string {
		if k == "HBMESH_HEALTHCHECK_URL" {
			return ok.URL
		}
		return ""
	}, "healthcheck")
	if code != exitOK {
		t.Errorf("healthcheck with $HBMESH_HEALTHCHECK_URL: exit %d", code)
	}
}

func TestStatusTwoMonitors(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.ClientURL()
	m1 := start(t, "monitor", "-s", url, "--id", "mon-a", "--json", "--log-level", "warn")
	m2 := start(t, "monitor", "-s", url, "--id", "mon-b", "--json", "--log-level", "warn")
	start(t, "node", "-s", url, "--id", "web-1", "--interval", "100ms")
	for _, m := range []*proc{m1, m2} {
		waitFor(t, 10*time.Second, "alive event", func() bool {
			return hasEvent(jsonEvents(t, m.stdout.String()), "web-1", "alive", "")
		})
	}
	code, stdout, stderr := runSync(t, nil, "status", "-s", url, "--wait", "2s")
	if code != 0 {
		t.Fatalf("status exit %d; stderr %q", code, stderr)
	}
	for _, want := range []string{"web-1", "mon-a", "mon-b"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("status output lacks %q:\n%s", want, stdout)
		}
	}

	code, stdout, _ = runSync(t, nil, "status", "-s", url, "--json")
	var rep struct {
		Monitors []struct{ ID string } `json:"monitors"`
		Peers    []struct{ ID, State string }
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &rep) != nil || len(rep.Monitors) != 2 || len(rep.Peers) != 1 || rep.Peers[0].State != "alive" {
		t.Errorf("status --json: exit %d, %+v from %q", code, rep, stdout)
	}

	// watch redraws until interrupted.
	w := start(t, "watch", "-s", url, "--interval", "50ms")
	waitFor(t, 10*time.Second, "two frames", func() bool { return strings.Count(w.stdout.String(), "web-1") >= 2 })
	if code := w.stop(t); code != 0 {
		t.Errorf("watch exit %d; stderr %q", code, w.stderr)
	}
}

func TestStatusNoMonitors(t *testing.T) {
	srv := natstest.Start(t)
	code, _, stderr := runSync(t, nil, "status", "-s", srv.ClientURL(), "--wait", "200ms")
	// Nothing subscribes at all: the server says so, and so does status.
	if code != exitFailure || !strings.Contains(stderr, "no monitor is subscribed on hb.monitor.v1.peers (wrong --prefix?)") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestStatusFailOn(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.ClientURL()
	mon, _ := meshtest.StartMonitor(t, url, "mon-a")
	kill := meshtest.StartNode(t, url, "web-1", 100*time.Millisecond)
	natstest.Eventually(t, "web-1 alive", func() bool { p, ok := mon.Peer("web-1"); return ok && p.State == monitor.StateAlive })
	if code, _, stderr := runSync(t, nil, "status", "-s", url, "--fail-on", "dead,suspect,split"); code != exitOK {
		t.Errorf("healthy: exit %d, stderr %q", code, stderr)
	}
	kill()
	natstest.Eventually(t, "web-1 dead", func() bool { p, _ := mon.Peer("web-1"); return p.State == monitor.StateDead })
	code, stdout, stderr := runSync(t, nil, "status", "-s", url, "--fail-on", "dead,split")
	if code != exitFailure || stderr != "hbmesh status: --fail-on: 1 peer dead\n" || !strings.Contains(stdout, "web-1") {
		t.Errorf("exit %d, stderr %q, stdout:\n%s", code, stderr, stdout)
	}
	if code, _, stderr := runSync(t, nil, "status", "-s", url, "--fail-on", "split"); code != exitOK {
		t.Errorf("split: exit %d, stderr %q", code, stderr)
	}
}

func TestEventsPublishedByDefault(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.ClientURL()
	nc := natstest.Connect(t, url)
	sub, err := nc.SubscribeSync("hb.events.alive.web-1")
	if err != nil {
		t.Fatal(err)
	}
	mon := start(t, "monitor", "-s", url, "--id", "m1", "--log-level", "warn")
	natstest.WaitInterest(t, srv, "hb.anything")
	start(t, "node", "-s", url, "--id", "web-1", "--interval", "100ms")
	msg, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("no event on hb.events.alive.web-1: %v; stderr:\n%s", err, mon.stderr)
	}
	if ev, mon, err := monitor.DecodeEvent(msg.Data); err != nil || ev.ID != "web-1" || ev.State != monitor.StateAlive || mon != "m1" {
		t.Errorf("event %s: %v from %q, %v", msg.Data, ev, mon, err)
	}

	// --no-publish-events turns it off.
	mon.stop(t)
	sub2, err := nc.SubscribeSync("hb.events.>")
	if err != nil {
		t.Fatal(err)
	}
	quiet := start(t, "monitor", "-s", url, "--id", "m2", "--no-publish-events", "--json", "--log-level", "warn")
	waitFor(t, 10*time.Second, "alive event", func() bool {
		return hasEvent(jsonEvents(t, quiet.stdout.String()), "web-1", "alive", "")
	})
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if msg, err := sub2.NextMsg(300 * time.Millisecond); err == nil {
		t.Errorf("event published with --no-publish-events: %s %s", msg.Subject, msg.Data)
	}
}

func TestEventsStreamEmbedded(t *testing.T) {
	store := t.TempDir()
	mon := start(t, "monitor", "--embedded", "--port=-1", "--store-dir", store, "--id", "m1", "--events-stream", "HBEVENTS")
	url := logValue(t, mon, "embedded NATS server ready", "url")
	logValue(t, mon, "event stream", "stream")
	start(t, "node", "-s", url, "--id", "web-1", "--interval", "100ms")

	nc := natstest.Connect(t, url)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "HBEVENTS")
	if err != nil {
		t.Fatalf("stream HBEVENTS: %v; stderr:\n%s", err, mon.stderr)
	}
	waitFor(t, 10*time.Second, "an event in the stream", func() bool {
		info, err := s.Info(ctx)
		return err == nil && info.State.Msgs > 0
	})
	// The embedded server's JetStream also carries restart memory.
	if _, err := js.KeyValue(ctx, "hbmesh_hb_peers"); err != nil {
		t.Errorf("restart memory bucket: %v", err)
	}
	if code := mon.stop(t); code != 0 {
		t.Fatalf("monitor exit %d; stderr:\n%s", code, mon.stderr)
	}
	if _, err := os.Stat(filepath.Join(store, "jetstream")); err != nil {
		t.Errorf("store dir unused: %v", err)
	}
}

// TestMemoryBucketFlag: --memory-bucket names the KV bucket restart memory
// lives in.
func TestMemoryBucketFlag(t *testing.T) {
	mon := start(t, "monitor", "--embedded", "--port=-1", "--store-dir", t.TempDir(), "--id", "m1", "--memory-bucket", "mybucket")
	url := logValue(t, mon, "embedded NATS server ready", "url")
	logValue(t, mon, "restart memory loaded", "peers")
	if c := logValue(t, mon, "restart memory loaded", "cmd"); c != "memory" {
		t.Errorf("restart memory loaded: cmd=%s, want memory", c)
	}
	nc := natstest.Connect(t, url)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.KeyValue(ctx, "mybucket"); err != nil {
		t.Errorf("bucket mybucket: %v; stderr:\n%s", err, mon.stderr)
	}
	if _, err := js.KeyValue(ctx, "hbmesh_hb_peers"); err == nil {
		t.Error("the default bucket was created too")
	}
	if code := mon.stop(t); code != 0 {
		t.Fatalf("monitor exit %d; stderr:\n%s", code, mon.stderr)
	}
}

// TestEventsStreamFailure: a stream the server cannot create ends the
// monitor with exit 1 and one line that says "events:" once.
func TestEventsStreamFailure(t *testing.T) {
	code, _, stderr := runSync(t, nil, "monitor", "--embedded", "--port=-1", "--store-dir", t.TempDir(),
		"--no-memory", "--replicas", "3", "--events-stream", "EV3", "--log-level", "error")
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	last := lines[len(lines)-1]
	if code != exitFailure || !strings.HasPrefix(last, `hbmesh monitor: events: stream "EV3": `) {
		t.Fatalf("exit %d, last line %q; want 1 and hbmesh monitor: events: stream \"EV3\": ...\nstderr:\n%s", code, last, stderr)
	}
}

func TestStateFileRestart(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.ClientURL()
	path := filepath.Join(t.TempDir(), "peers.json")
	args := []string{"monitor", "-s", url, "--id", "m1", "--state-file", path, "--json", "--log-level", "warn"}
	mon := start(t, args...)
	natstest.WaitInterest(t, srv, "hb.anything")
	nd := start(t, "node", "-s", url, "--id", "db-1", "--interval", "100ms")
	waitFor(t, 10*time.Second, "alive event", func() bool {
		return hasEvent(jsonEvents(t, mon.stdout.String()), "db-1", "alive", "")
	})
	if code := mon.stop(t); code != 0 {
		t.Fatalf("monitor exit %d; stderr:\n%s", code, mon.stderr)
	}
	b, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(b), "db-1") {
		t.Fatalf("state file after shutdown: %v %q", err, b)
	}

	// The node goes away while no monitor listens: its goodbye is lost.
	nd.stop(t)
	mon2 := start(t, args...)
	waitFor(t, 10*time.Second, "dead event after restart", func() bool {
		for _, ev := range jsonEvents(t, mon2.stdout.String()) {
			if ev.ID == "db-1" && ev.State == monitor.StateDead {
				return true
			}
		}
		return false
	})
}

// writeContext writes a nats CLI context file under a fresh config home
// and returns that home.
func writeContext(t *testing.T, name string, ctx map[string]string) string {
	t.Helper()
	home := t.TempDir()
	dir := filepath.Join(home, "nats", "context")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ctx)
	if err := os.WriteFile(filepath.Join(dir, name+".json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return home
}

// TestContextMissingFile: a file a context names is checked like the
// flag's, and the message says where the path came from.
func TestContextMissingFile(t *testing.T) {
	home := writeContext(t, "bad", map[string]string{"url": "nats://127.0.0.1:1", "nkey": "/nonexistent/seed.nk"})
	getenv := func(k string) string { return map[string]string{"XDG_CONFIG_HOME": home}[k] }
	code, _, stderr := runSync(t, getenv, "probe", "x", "--context", "bad")
	if want := `--nkey (from --context bad) "/nonexistent/seed.nk": no such file`; code != exitUsage || !strings.Contains(stderr, want) {
		t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr, exitUsage, want)
	}
}

func TestContext(t *testing.T) {
	srv := natstest.Start(t, func(c *embedded.Config) {
		c.Options = func(o *server.Options) { o.Username, o.Password = "hb", "secret" }
	})
	url := srv.ClientURL()
	start(t, "node", "-s", url, "--user", "hb", "--password", "secret", "--id", "n1", "--interval", "100ms")
	natstest.WaitInterest(t, srv, "hb.n1.probe")
	home := writeContext(t, "lab", map[string]string{"url": url, "user": "hb", "password": "secret"})
	env := func(extra ...string) func(string) string {
		m := map[string]string{"XDG_CONFIG_HOME": home}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return func(k string) string { return m[k] }
	}

	if code, stdout, stderr := runSync(t, env(), "probe", "n1", "--context", "lab"); code != 0 {
		t.Fatalf("probe --context lab: exit %d; %q %q", code, stdout, stderr)
	}
	if code, _, stderr := runSync(t, env("NATS_CONTEXT", "lab"), "probe", "n1"); code != 0 {
		t.Fatalf("probe with $NATS_CONTEXT: exit %d; %q", code, stderr)
	}
	// The environment overrides the context, and flags override both.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nowhere := "nats://" + ln.Addr().String()
	ln.Close()
	if code, _, stderr := runSync(t, env("NATS_URL", nowhere), "probe", "n1", "--context", "lab", "--log-level", "error"); code != exitFailure || !strings.Contains(stderr, ln.Addr().String()) {
		t.Errorf("$NATS_URL did not override the context: exit %d; %q", code, stderr)
	}
	if code, _, stderr := runSync(t, env(), "probe", "n1", "--context", "lab", "--password", "wrong", "--log-level", "error"); code != exitFailure || !strings.Contains(strings.ToLower(stderr), "authorization") {
		t.Errorf("--password did not override the context: exit %d; %q", code, stderr)
	}
	// A flag choosing another way to authenticate replaces the context's
	// user rather than joining it.
	if code, _, stderr := runSync(t, env(), "probe", "n1", "--context", "lab", "--token", "tok", "--log-level", "error"); code != exitFailure || !strings.Contains(strings.ToLower(stderr), "authorization") {
		t.Errorf("--token did not replace the context's user: exit %d; %q", code, stderr)
	}
	// A context file may also be named by path.
	path := filepath.Join(home, "nats", "context", "lab.json")
	if code, _, stderr := runSync(t, nil, "probe", "n1", "--context", path); code != 0 {
		t.Errorf("probe --context %s: exit %d; %q", path, code, stderr)
	}
}

// TestMonitorWithAuthTemplate runs a monitor as monitor1 of
// deploy/auth/users.conf, which only works with its own inbox prefix, and
// checks that registering for discovery left the auth-failure exit intact.
func TestMonitorWithAuthTemplate(t *testing.T) {
	var sopts *server.Options
	srv := natstest.Start(t, func(c *embedded.Config) {
		c.ConfigFile = filepath.Join("..", "..", "deploy", "auth", "users.conf")
		c.Host = "127.0.0.1"
		c.Options = func(o *server.Options) { sopts = o }
	})
	url := srv.ClientURL()
	mon := start(t, "monitor", "-s", url, "--user", "monitor1", "--password", "monitor1-example-password",
		"--inbox-prefix", "_INBOX_monitor1", "--id", "monitor1", "--json", "--http", "127.0.0.1:0")
	base := "http://" + logValue(t, mon, "http server listening", "addr")
	natstest.WaitInterest(t, srv, "hb.node-a")
	start(t, "node", "-s", url, "--user", "node-a", "--password", "node-a-example-password", "--id", "node-a", "--interval", "100ms")
	waitFor(t, 10*time.Second, "alive event", func() bool {
		return hasEvent(jsonEvents(t, mon.stdout.String()), "node-a", "alive", "")
	})
	waitFor(t, 10*time.Second, "/readyz 200", func() bool {
		code, _ := httpGet(t, base+"/readyz")
		return code == http.StatusOK
	})
	// ops can ask it for its status with its own inbox.
	code, stdout, stderr := runSync(t, nil, "status", "-s", url, "--user", "ops", "--password", "ops-example-password", "--inbox-prefix", "_INBOX_ops")
	if code != 0 || !strings.Contains(stdout, "node-a") {
		t.Errorf("status as ops: exit %d; %q %q", code, stdout, stderr)
	}

	// Revoke the monitor's password: it must still exit 1 at once, with
	// the micro service's handlers chained in front of ours.
	opts := sopts.Clone()
	for _, u := range opts.Users {
		if u.Username == "monitor1" {
			u.Password = "rotated"
		}
	}
	if err := srv.NATS().ReloadOptions(opts); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-mon.done:
		close(mon.done)
		if code != exitFailure {
			t.Fatalf("monitor exit %d, want 1; stderr:\n%s", code, mon.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("monitor still running after its credentials were revoked; stderr:\n%s", mon.stderr)
	}
	last := strings.TrimSpace(mon.stderr.String())
	last = last[strings.LastIndex(last, "\n")+1:]
	if !strings.HasPrefix(last, "hbmesh monitor: ") || !strings.Contains(strings.ToLower(last), "authorization") {
		t.Errorf("last stderr line %q does not give the reason", last)
	}
}

// TestReplicasOnACluster: on a three-server JetStream cluster, --replicas 3
// gives the restart memory bucket and the events stream three replicas
// each, and the monitor works on them.
func TestReplicasOnACluster(t *testing.T) {
	servers := natstest.StartJetStreamCluster(t, 3)
	url := servers[0].ClientURL()
	nc := natstest.Connect(t, url)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A fresh cluster elects its JetStream meta leader first.
	waitFor(t, 20*time.Second, "JetStream to answer", func() bool {
		actx, acancel := context.WithTimeout(ctx, time.Second)
		defer acancel()
		_, err := js.AccountInfo(actx)
		return err == nil
	})
	mon := start(t, "monitor", "-s", url, "--id", "m1", "--events-stream", "HBEVENTS", "--replicas", "3", "--json", "--log-level", "info")
	start(t, "node", "-s", servers[1].ClientURL(), "--id", "web-1", "--interval", "100ms")
	waitFor(t, 20*time.Second, "alive event", func() bool {
		return hasEvent(jsonEvents(t, mon.stdout.String()), "web-1", "alive", "")
	})
	// The events publisher creates its stream as it starts, alongside the
	// monitor, so the first event may come before it.
	var s jetstream.Stream
	waitFor(t, 20*time.Second, "the events stream", func() bool {
		sctx, scancel := context.WithTimeout(ctx, time.Second)
		defer scancel()
		s, err = js.Stream(sctx, "HBEVENTS")
		return err == nil
	})
	if r := s.CachedInfo().Config.Replicas; r != 3 {
		t.Errorf("events stream has %d replicas, want 3", r)
	}
	kv, err := js.KeyValue(ctx, "hbmesh_hb_peers")
	if err != nil {
		t.Fatalf("restart memory bucket: %v; stderr:\n%s", err, mon.stderr)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r := st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Replicas; r != 3 {
		t.Errorf("restart memory bucket has %d replicas, want 3", r)
	}
	waitFor(t, 20*time.Second, "an event in the replicated stream", func() bool {
		info, err := s.Info(ctx)
		return err == nil && info.State.Msgs > 0
	})
	if code := mon.stop(t); code != 0 {
		t.Fatalf("monitor exit %d; stderr:\n%s", code, mon.stderr)
	}
}

// TestContextSettingsNotApplied: a context setting hbmesh does not apply
// is refused with one line, not ignored: a JetStream domain or API prefix
// by the commands that use JetStream (a node does not, and connects), a
// Windows certificate store by every command. A SOCKS proxy is applied:
// through a proxy that is not there, a probe cannot connect.
func TestContextSettingsNotApplied(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.ClientURL()
	dead := "127.0.0.1:" + strconv.Itoa(freePort(t))
	home, writeCtx := newContextHome(t)
	writeCtx("domain", contextJSON("nats://"+dead, "jetstream_domain", "hub"))
	writeCtx("apiprefix", contextJSON("nats://"+dead, "jetstream_api_prefix", "$JS.hub.API"))
	writeCtx("certstore", contextJSON("nats://"+dead, "windows_cert_store", "user"))
	writeCtx("direct", contextJSON(url))
	writeCtx("proxied", contextJSON(url, "socks_proxy", dead))
	getenv := func(extra ...string) func(string) string {
		m := map[string]string{"XDG_CONFIG_HOME": home}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return func(k string) string { return m[k] }
	}
	for _, tc := range []struct {
		args []string
		env  []string
		code int
		want string
	}{
		{[]string{"monitor", "--context", "domain"}, nil, exitUsage, `hbmesh monitor: --context domain sets jetstream_domain "hub", which hbmesh does not apply: use a context without it` + "\n"},
		{[]string{"monitor"}, []string{"NATS_CONTEXT", "domain"}, exitUsage, `hbmesh monitor: $NATS_CONTEXT domain sets jetstream_domain "hub", which hbmesh does not apply: use a context without it` + "\n"},
		{[]string{"notify", "--stream", "EV", "--on-event", "true", "--context", "apiprefix"}, nil, exitUsage, `hbmesh notify: --context apiprefix sets jetstream_api_prefix "$JS.hub.API", which hbmesh does not apply: use a context without it` + "\n"},
		{[]string{"node", "--id", "n1", "--context", "certstore"}, nil, exitUsage, "hbmesh node: --context certstore sets windows_cert_store, which hbmesh does not apply: use a context without it\n"},
		{[]string{"node", "--id", "n1", "--context", "domain", "--log-level", "error"}, nil, exitFailure, "connection refused"},
	} {
		code, _, stderr := runSync(t, getenv(tc.env...), tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q %q: exit %d, stderr %q; want exit %d and %q", tc.env, tc.args, code, stderr, tc.code, tc.want)
		}
	}

	nd := start(t, "node", "-s", url, "--id", "n1", "--interval", "100ms")
	natstest.WaitInterest(t, srv, "hb.n1.probe")
	if code, stdout, stderr := runSync(t, getenv(), "probe", "n1", "--context", "direct"); code != exitOK {
		t.Fatalf("probe --context direct: exit %d; %q %q", code, stdout, stderr)
	}
	if code, _, stderr := runSync(t, getenv(), "probe", "n1", "--context", "proxied", "--timeout", "1s"); code != exitFailure || !strings.Contains(stderr, "connect ") {
		t.Errorf("probe through a SOCKS proxy that is not there: exit %d, stderr %q; want exit 1 and a connect error", code, stderr)
	}
	nd.stop(t)
}
