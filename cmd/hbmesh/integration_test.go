package main

import (
	"bufio"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/monitor"
)

// jsonEvents parses the JSON lines in out, failing on any line that is not one
// complete event.
func jsonEvents(t *testing.T, out string) []monitor.Event {
	t.Helper()
	var evs []monitor.Event
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		ev, _, err := monitor.DecodeEvent(sc.Bytes())
		if err != nil {
			t.Fatalf("stdout line %q is not a JSON event: %v", sc.Text(), err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// hasEvent reports whether evs has peer id's transition to state from
// prev ("" for a first sighting).
func hasEvent(evs []monitor.Event, id, state, prev string) bool {
	for _, e := range evs {
		if e.ID == id && e.State.String() == state && e.Prev.String() == prev {
			return true
		}
	}
	return false
}

func TestMonitorJSONSeesNodeAliveThenLeft(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.ClientURL()
	mon := start(t, "monitor", "-s", url, "--json", "--log-level", "warn")
	// The monitor must be subscribed before the node's first beat, or the
	// first event seen would not be the first sighting; wait for its
	// subscription to show up on the server.
	natstest.WaitInterest(t, srv, "hb.anything")
	nd := start(t, "node", "-s", url, "--id", "web-1", "--interval", "100ms", "--label", "role=web")

	waitFor(t, 10*time.Second, "alive event", func() bool {
		return hasEvent(jsonEvents(t, mon.stdout.String()), "web-1", "alive", "")
	})
	if code := nd.stop(t); code != 0 {
		t.Fatalf("node exit %d; stderr:\n%s", code, nd.stderr)
	}
	waitFor(t, 10*time.Second, "left event", func() bool {
		return hasEvent(jsonEvents(t, mon.stdout.String()), "web-1", "left", "alive")
	})
	evs := jsonEvents(t, mon.stdout.String())
	if evs[0].Reason != monitor.ReasonFirstBeat || evs[0].Boot == "" || evs[0].Seq == 0 || evs[0].Time.IsZero() {
		t.Errorf("first event incomplete: %+v", evs[0])
	}
	if code := mon.stop(t); code != 0 {
		t.Fatalf("monitor exit %d; stderr:\n%s", code, mon.stderr)
	}
}

func TestMonitorTextLines(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.ClientURL()
	mon := start(t, "monitor", "-s", url, "--log-format", "json")
	natstest.WaitInterest(t, srv, "hb.anything")
	nd := start(t, "node", "-s", url, "--id", "db-1", "--interval", "100ms")
	waitFor(t, 10*time.Second, "alive line", func() bool {
		return strings.Contains(mon.stdout.String(), "alive    db-1 first_beat")
	})
	nd.stop(t)
	if !strings.Contains(mon.stderr.String(), `"msg":"NATS connected","cmd":"monitor"`) {
		t.Errorf("no JSON log line naming its command on stderr:\n%s", mon.stderr)
	}
}

func TestProbe(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.ClientURL()
	nd := start(t, "node", "-s", url, "--id", "api-7", "--interval", "100ms")
	natstest.WaitInterest(t, srv, "hb.api-7.probe")

	code, stdout, stderr := runSync(t, nil, "probe", "-s", url, "api-7", "--log-level", "error")
	if code != 0 {
		t.Fatalf("probe exit %d, stderr %q", code, stderr)
	}
	if !strings.HasPrefix(stdout, "api-7: alive, ") || !strings.Contains(stdout, "rtt ") || strings.Count(stdout, "\n") != 1 {
		t.Errorf("probe output %q", stdout)
	}

	code, stdout, stderr = runSync(t, nil, "probe", "-s", url, "--timeout", "500ms", "--log-level", "error", "nobody")
	if code != exitFailure || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "nobody: no answer") {
		t.Errorf("absent probe: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// By default a probe logs nothing about its connection: stdout is the
	// answer and stderr stays empty.
	if code, _, stderr := runSync(t, nil, "probe", "-s", url, "api-7"); code != 0 || stderr != "" {
		t.Errorf("probe with default logging: exit %d, stderr %q; want 0 and nothing", code, stderr)
	}
	nd.stop(t)
}

func TestProbeEnvServer(t *testing.T) {
	srv := natstest.Start(t)
	getenv := func(k string) string {
		if k == "NATS_URL" {
			return srv.ClientURL()
		}
		return ""
	}
	// No node: NATS_URL is used (connect works) and nothing answers.
	code, _, stderr := runSync(t, getenv, "probe", "--log-level", "error", "ghost")
	if code != exitFailure || !strings.Contains(stderr, "ghost: no answer") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	// An explicit flag beats the environment.
	code, _, stderr = runSync(t, getenv, "probe", "-s", "nats://127.0.0.1:1", "--log-level", "error", "ghost")
	if code != exitFailure || !strings.Contains(stderr, "connect nats://127.0.0.1:1") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

// TestDisconnectLogNamesServer: "NATS disconnected" names the server the
// connection was on, with its password redacted, although nats.go has
// forgotten it by then; here the server goes away under a node.
func TestDisconnectLogNamesServer(t *testing.T) {
	srv := natstest.Start(t, func(c *embedded.Config) {
		c.Options = func(o *server.Options) { o.Username, o.Password = "hb", "secret" }
	})
	hostPort := strings.TrimPrefix(srv.ClientURL(), "nats://")
	nd := start(t, "node", "-s", "nats://hb:secret@"+hostPort, "--id", "n1", "--interval", "100ms")
	natstest.WaitInterest(t, srv, "hb.n1.probe")
	srv.Shutdown()
	got := logValue(t, nd, "NATS disconnected", "server")
	if !strings.Contains(got, hostPort) || strings.Contains(got, "secret") {
		t.Errorf("NATS disconnected server=%s; want the redacted URL of %s\nstderr:\n%s", got, hostPort, nd.stderr)
	}
	nd.stop(t)
}

func TestConnectAuthFailure(t *testing.T) {
	srv := natstest.Start(t, func(c *embedded.Config) {
		c.Options = func(o *server.Options) { o.Username, o.Password = "hb", "secret" }
	})
	// One line naming the credentials that were refused, or saying that
	// there were none.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--user", "hb", "--password", "wrong"}, `nats: Authorization Violation (the server does not accept user "hb" (--user))`},
		{nil, "nats: Authorization Violation (no credentials given: set --creds, --nkey, --user and --password, --token or --context)"},
	} {
		code, _, stderr := runSync(t, nil, append([]string{"node", "-s", srv.ClientURL(), "--log-level", "error"}, tc.args...)...)
		if code != exitFailure || strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, tc.want+"\n") || strings.Contains(stderr, "wrong") {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and one line ending %q", tc.args, code, stderr, exitFailure, tc.want)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestServer(t *testing.T) {
	port := freePort(t)
	srv := start(t, "server", "-a", "127.0.0.1", "-p", strconv.Itoa(port), "--name", "test-server")
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	waitFor(t, 10*time.Second, "server ready log", func() bool {
		return strings.Contains(srv.stderr.String(), "NATS server ready")
	})
	nc := natstest.Connect(t, url)
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	if code := srv.stop(t); code != 0 {
		t.Fatalf("server exit %d; stderr:\n%s", code, srv.stderr)
	}
}

func TestMonitorEmbedded(t *testing.T) {
	port := freePort(t)
	// $NATS_URL must not stop --embedded: only an explicit --server does.
	mon := startEnv(t, map[string]string{"NATS_URL": "nats://127.0.0.1:1"}, "monitor", "--embedded", "--port", strconv.Itoa(port), "--json")
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	waitFor(t, 10*time.Second, "embedded server ready", func() bool {
		return strings.Contains(mon.stderr.String(), "monitor started")
	})
	nd := start(t, "node", "-s", url, "--id", "remote-1", "--interval", "100ms")
	waitFor(t, 10*time.Second, "alive event", func() bool {
		return hasEvent(jsonEvents(t, mon.stdout.String()), "remote-1", "alive", "")
	})
	nd.stop(t)
	if code := mon.stop(t); code != 0 {
		t.Fatalf("monitor exit %d; stderr:\n%s", code, mon.stderr)
	}
}

// TestEmbeddedServerLogs: the embedded server's own notices (its banner,
// JetStream's) stay out of a monitor's log unless --log-level debug.
func TestEmbeddedServerLogs(t *testing.T) {
	for _, tt := range []struct {
		level      string
		wantNotice bool
	}{{"info", false}, {"debug", true}} {
		t.Run(tt.level, func(t *testing.T) {
			mon := start(t, "monitor", "--embedded", "--port=-1", "--store-dir", t.TempDir(), "--no-memory", "--log-level", tt.level)
			waitFor(t, 10*time.Second, "monitor started", func() bool {
				return strings.Contains(mon.stderr.String(), "monitor started")
			})
			if code := mon.stop(t); code != 0 {
				t.Fatalf("monitor exit %d; stderr:\n%s", code, mon.stderr)
			}
			notices := 0
			for _, line := range strings.Split(mon.stderr.String(), "\n") {
				if strings.Contains(line, "level=INFO") && strings.Contains(line, "cmd=server") {
					notices++
				}
			}
			if got := notices > 0; got != tt.wantNotice {
				t.Errorf("--log-level %s: %d embedded-server info lines, want some: %v\nstderr:\n%s", tt.level, notices, tt.wantNotice, mon.stderr)
			}
		})
	}
}

func TestDemoChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for 12s; skipped with -short")
	}
	code, stdout, stderr := runSync(t, nil, "demo", "--chaos", "--nodes", "4", "--interval", "200ms",
		"--chaos-every", "1s", "--summary-every", "2s", "--duration", "12s", "--log-level", "error")
	if code != 0 {
		t.Fatalf("demo exit %d; stderr:\n%s", code, stderr)
	}
	for _, want := range []string{
		"demo: NATS server at nats://127.0.0.1:",
		"alive    demo-1 first_beat",
		"dead ", "left ", "restarted",
		"alive 4  suspect 0  dead 0  left 0",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, stdout)
		}
	}
	if n := checkChaosExpectations(t, stdout); n < 3 {
		t.Errorf("only %d chaos expectations came true; want at least 3:\n%s", n, stdout)
	}
}

// checkChaosExpectations checks that every "chaos: <action> <id> ...
// (expect ...)" line of a demo's output is followed by the events it
// announces for that node, in order, before chaos touches the node again.
// Announcements still open when the demo starts stopping its nodes are
// cut short by the shutdown and not checked. It returns how many were met.
func checkChaosExpectations(t *testing.T, out string) int {
	t.Helper()
	expect := map[string][]string{
		"kill": {"dead"}, "stop": {"left"}, "restart": {"restarted"},
		"start": {"restarted"}, "freeze": {"suspect", "dead"}, "thaw": {"alive"},
	}
	type open struct {
		line string
		want []string
	}
	pending := map[string]*open{}
	met := 0
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "demo: stopping"):
			return met
		case len(f) >= 3 && f[0] == "chaos:":
			want, ok := expect[f[1]]
			if !ok {
				t.Errorf("unknown chaos action in %q", line)
				continue
			}
			id := f[2]
			if p := pending[id]; p != nil && len(p.want) > 0 {
				t.Errorf("%q: no %s for %s before %q", p.line, p.want[0], id, line)
			}
			pending[id] = &open{line: line, want: want}
		case len(f) >= 4 && strings.Contains(line, " demo-"):
			// "15:04:05.000 alive    demo-1 (was alive) restarted boot a→b"
			id, got := f[2], f[1]
			if strings.Contains(line, " restarted boot ") {
				got = "restarted"
			}
			if p := pending[id]; p != nil && len(p.want) > 0 && p.want[0] == got {
				if p.want = p.want[1:]; len(p.want) == 0 {
					met++
				}
			}
		}
	}
	t.Errorf("demo output lacks the shutdown line:\n%s", out)
	return met
}

func TestAuthRevokedWhileRunning(t *testing.T) {
	var sopts *server.Options
	srv := natstest.Start(t, func(c *embedded.Config) {
		c.Options = func(o *server.Options) { o.Username, o.Password, sopts = "hb", "secret", o }
	})
	nd := start(t, "node", "-s", srv.ClientURL(), "--user", "hb", "--password", "secret", "--id", "n1", "--interval", "100ms")
	natstest.WaitInterest(t, srv, "hb.n1.probe")

	// Change the password under the running node: the server drops it and
	// refuses its reconnects.
	opts := sopts.Clone()
	opts.Password = "rotated"
	if err := srv.NATS().ReloadOptions(opts); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-nd.done:
		close(nd.done)
		if code != exitFailure {
			t.Fatalf("node exit %d, want %d; stderr:\n%s", code, exitFailure, nd.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("node still running after its credentials were revoked; stderr:\n%s", nd.stderr)
	}
	last := strings.TrimSpace(nd.stderr.String())
	last = last[strings.LastIndex(last, "\n")+1:]
	if !strings.HasPrefix(last, "hbmesh node: ") || !strings.Contains(strings.ToLower(last), "authorization") {
		t.Errorf("last stderr line %q does not give the reason", last)
	}
}

// An interrupted demo stops its nodes first, so the monitor reports each
// of them leaving, and only then prints its final summary.
func TestDemoInterruptEndsWithEveryNodeLeft(t *testing.T) {
	demo := start(t, "demo", "--nodes", "3", "--interval", "100ms", "--summary-every", "1h", "--log-level", "error")
	lineup := "alive 3  suspect 0  dead 0  left 0"
	waitFor(t, 20*time.Second, "the line-up", func() bool { return strings.Contains(demo.stdout.String(), lineup) })
	if code := demo.stop(t); code != 0 {
		t.Fatalf("demo exit %d; stderr:\n%s", code, demo.stderr)
	}
	out := demo.stdout.String()
	lines := strings.Split(strings.TrimSpace(out[strings.Index(out, lineup)+len(lineup):]), "\n")
	if last := lines[len(lines)-1]; last != "alive 0  suspect 0  dead 0  left 3" {
		t.Fatalf("last line %q, want every node left; output:\n%s", last, out)
	}
	left := map[string]bool{}
	for _, l := range lines[:len(lines)-1] {
		// "15:04:05.000 left     demo-1 (was alive) goodbye"
		if f := strings.Fields(l); len(f) >= 3 && f[1] == "left" {
			left[f[2]] = true
		}
	}
	for _, id := range []string{"demo-1", "demo-2", "demo-3"} {
		if !left[id] {
			t.Errorf("no left line for %s before the final summary; output:\n%s", id, out)
		}
	}
}
