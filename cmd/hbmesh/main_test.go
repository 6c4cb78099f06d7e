package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hbmesh/hbmesh/internal/syncio"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// noEnv is an empty environment.
func noEnv(string) string { return "" }

// runSync runs the command line to completion and returns its exit code,
// stdout and stderr.
func runSync(t *testing.T, getenv func(string) string, args ...string) (int, string, string) {
	t.Helper()
	if getenv == nil {
		getenv = noEnv
	}
	var stdout, stderr syncio.Writer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, args, strings.NewReader(""), &stdout, &stderr, getenv)
	return code, stdout.String(), stderr.String()
}

// proc is a command running in the background.
type proc struct {
	cancel context.CancelFunc
	done   chan int
	stdout *syncio.Writer
	stderr *syncio.Writer
}

// start runs the command line in a goroutine until stop (or test end).
func start(t *testing.T, args ...string) *proc {
	t.Helper()
	return startEnv(t, nil, args...)
}

// startEnv is start with environment variables.
func startEnv(t *testing.T, environ map[string]string, args ...string) *proc {
	t.Helper()
	getenv := func(k string) string { return environ[k] }
	ctx, cancel := context.WithCancel(context.Background())
	p := &proc{cancel: cancel, done: make(chan int, 1), stdout: &syncio.Writer{}, stderr: &syncio.Writer{}}
	go func() { p.done <- run(ctx, args, strings.NewReader(""), p.stdout, p.stderr, getenv) }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop cancels the command and returns its exit code.
func (p *proc) stop(t *testing.T) int {
	t.Helper()
	p.cancel()
	select {
	case code, ok := <-p.done:
		if ok {
			close(p.done)
			return code
		}
		return -1
	case <-time.After(20 * time.Second):
		t.Fatalf("command did not stop; stderr:\n%s", p.stderr)
		return -1
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string // substring of the one stderr line
	}{
		{"interval not a duration", []string{"node", "--interval", "5x"}, nil, `--interval: invalid value "5x": not a duration`},
		{"interval too short", []string{"node", "--interval", "50ms"}, nil, `50ms is outside [100ms, 1h0m0s]`},
		{"interval too long", []string{"node", "--interval", "2h"}, nil, `2h0m0s is outside`},
		{"id with dot", []string{"node", "--id", "a.b"}, nil, `invalid id "a.b": contains '.'`},
		{"id with wildcard", []string{"node", "--id", "a*"}, nil, `invalid id "a*": contains wildcard`},
		{"empty id", []string{"node", "--id", ""}, nil, `invalid id "": empty`},
		{"bad label key", []string{"node", "--label", "a b=c"}, nil, `label key "a b"`},
		{"label without value", []string{"node", "--label", "role"}, nil, `want key=value`},
		{"unknown flag", []string{"node", "--bogus"}, nil, `unknown flag --bogus`},
		{"unknown flag with value", []string{"probe", "x", "--bogus=1"}, nil, `unknown flag --bogus`},
		{"flag without argument", []string{"node", "--interval"}, nil, `hbmesh node: --interval: missing value`},
		{"short flag without argument", []string{"node", "-s"}, nil, `hbmesh node: --server: missing value`},
		{"bad short flag value", []string{"server", "-p", "x"}, nil, `--port: invalid value "x": not an integer`},
		{"bad boolean", []string{"monitor", "--json=maybe"}, nil, `--json: bool value must be true, 1, yes, false, 0 or no but got "maybe"`},
		{"unexpected argument", []string{"node", "extra"}, nil, `unexpected argument extra`},
		{"unknown subcommand", []string{"frobnicate"}, nil, `hbmesh: unknown command "frobnicate" (see 'hbmesh help')`},
		{"bad detector", []string{"monitor", "--detector", "magic"}, nil, `--detector must be one of "fixed","phi" but got "magic"`},
		{"dead before suspect", []string{"monitor", "--suspect-after", "3", "--dead-after", "2"}, nil, `--dead-after 2 must exceed --suspect-after 3`},
		{"bad log level", []string{"node", "--log-level", "loud"}, nil, `--log-level must be one of "debug","info","warn","error" but got "loud"`},
		{"bad log format", []string{"monitor", "--log-format", "xml"}, nil, `--log-format must be one of "text","json" but got "xml"`},
		{"bad env timeout", []string{"node"}, map[string]string{"NATS_TIMEOUT": "soon"}, `hbmesh node: NATS_TIMEOUT="soon": not a duration`},
		{"bad env interval", []string{"node"}, map[string]string{"HBMESH_INTERVAL": "5x"}, `hbmesh node: HBMESH_INTERVAL="5x": not a duration (want e.g. 500ms, 2s, 1m)`},
		{"env interval too short", []string{"node"}, map[string]string{"HBMESH_INTERVAL": "5ms"}, `hbmesh node: HBMESH_INTERVAL="5ms": 5ms is outside [100ms, 1h0m0s]`},
		{"bad env label", []string{"node"}, map[string]string{"HBMESH_LABELS": "role=web,zone"}, `hbmesh node: HBMESH_LABELS="role=web,zone": want key=value`},
		{"bad env id", []string{"node"}, map[string]string{"HBMESH_ID": "a.b"}, `hbmesh node: HBMESH_ID="a.b": invalid id "a.b": contains '.'`},
		{"bad env detector", []string{"monitor"}, map[string]string{"HBMESH_DETECTOR": "magic"}, `hbmesh monitor: HBMESH_DETECTOR="magic": want one of fixed, phi`},
		{"bad env bool", []string{"monitor"}, map[string]string{"HBMESH_JSON": "maybe"}, `hbmesh monitor: HBMESH_JSON="maybe": bool value must be`},
		{"bad env log level", []string{"node"}, map[string]string{"HBMESH_LOG_LEVEL": "loud"}, `hbmesh node: HBMESH_LOG_LEVEL="loud": want one of debug, info, warn, error`},
		{"env port without embedded", []string{"monitor"}, map[string]string{"HBMESH_PORT": "4333"}, `$HBMESH_PORT needs --embedded`},
		{"env dead before suspect", []string{"monitor"}, map[string]string{"HBMESH_SUSPECT_AFTER": "3", "HBMESH_DEAD_AFTER": "2"}, `--dead-after 2 must exceed --suspect-after 3`},
		{"probe without id", []string{"probe"}, nil, `hbmesh probe: missing id (usage: hbmesh probe <id> [flags])`},
		{"probe bad id", []string{"probe", "a>b"}, nil, `invalid id "a>b"`},
		{"probe two ids", []string{"probe", "a", "b"}, nil, `unexpected argument b`},
		{"bad drop fraction", []string{"node", "--drop-beats", "2"}, nil, `2 is outside [0, 1]`},
		{"bad port", []string{"server", "-p", "70000"}, nil, `70000 is outside`},
		{"bad cluster url", []string{"server", "--cluster", "nope"}, nil, `--cluster "nope": want nats://host:port`},
		{"port without embedded", []string{"monitor", "--port", "4333"}, nil, `--port needs --embedded`},
		{"tlscert without key", []string{"probe", "x", "--tlscert", "c.pem"}, nil, `--tlscert and --tlskey must be given together`},
		{"user and creds", []string{"probe", "x", "--user", "u", "--password", "p", "--creds", "/nonexistent"}, nil, `--user and --creds are exclusive: give one of --user/--password, --token, --creds, --nkey`},
		{"user and token", []string{"probe", "x", "--user", "u", "--token", "t"}, nil, `--user and --token are exclusive`},
		{"creds and nkey", []string{"node", "--creds", "a.creds", "--nkey", "a.nk"}, nil, `--creds and --nkey are exclusive`},
		{"token env and nkey", []string{"monitor", "--nkey", "a.nk"}, map[string]string{"NATS_TOKEN": "t"}, `$NATS_TOKEN and --nkey are exclusive`},
		{"user env and creds env", []string{"status"}, map[string]string{"NATS_USER": "u", "NATS_CREDS": "a.creds"}, `$NATS_USER and $NATS_CREDS are exclusive`},
		{"password without user", []string{"probe", "x", "--password", "p"}, nil, `--password needs --user`},
		{"password env without user", []string{"node"}, map[string]string{"NATS_PASSWORD": "p"}, `$NATS_PASSWORD needs --user`},
		{"missing nkey", []string{"probe", "x", "--nkey", "/nonexistent/seed.nk"}, nil, `--nkey "/nonexistent/seed.nk": no such file or directory`},
		{"missing creds", []string{"node", "--creds", "/nonexistent/u.creds"}, nil, `--creds "/nonexistent/u.creds": no such file or directory`},
		{"missing creds env", []string{"monitor"}, map[string]string{"NATS_CREDS": "/nonexistent/u.creds"}, `$NATS_CREDS "/nonexistent/u.creds": no such file`},
		{"creds is a directory", []string{"probe", "x", "--creds", "/"}, nil, `--creds "/": is a directory`},
		{"missing tlsca", []string{"status", "--tlsca", "/nonexistent/ca.pem"}, nil, `--tlsca "/nonexistent/ca.pem": no such file`},
		{"missing tlscert", []string{"probe", "x", "--tlscert", "/nonexistent/c.pem", "--tlskey", "/nonexistent/k.pem"}, nil, `--tlscert "/nonexistent/c.pem": no such file`},
		{"missing tlskey env", []string{"probe", "x", "--tlscert", "/dev/null"}, map[string]string{"NATS_KEY": "/nonexistent/k.pem"}, `$NATS_KEY "/nonexistent/k.pem": no such file`},
		{"missing server config", []string{"server", "-c", "/nonexistent/nats.conf"}, nil, `--config "/nonexistent/nats.conf": no such file`},
		{"missing embedded config", []string{"monitor", "--embedded", "--config", "/nonexistent/nats.conf"}, nil, `--config "/nonexistent/nats.conf": no such file`},
		{"state-file dir missing", []string{"monitor", "--state-file", "/nonexistent/dir/peers.json"}, nil, `--state-file "/nonexistent/dir": no such file or directory`},
		{"state-file dir is a file", []string{"monitor", "--state-file", "/dev/null/peers.json"}, nil, `--state-file "/dev/null": not a directory`},
		{"http nonsense", []string{"monitor", "--http", "nonsense"}, nil, `--http: invalid value "nonsense": want HOST:PORT`},
		{"http bad port", []string{"monitor", "--http", "127.0.0.1:99999"}, nil, `port "99999" is not a number in [0, 65535]`},
		{"zombie state", []string{"monitor", "--on-event", "true", "--on-event-states", "zombie"}, nil, `unknown state "zombie"`},
		{"states without hook", []string{"monitor", "--on-event-states", "dead"}, nil, `--on-event-states needs --on-event`},
		{"env timeout without hook", []string{"monitor"}, map[string]string{"HBMESH_ON_EVENT_TIMEOUT": "1s"}, `$HBMESH_ON_EVENT_TIMEOUT needs --on-event`},
		{"bad webhook", []string{"monitor", "--webhook", "ftp://x"}, nil, `--webhook "ftp://x" is not an http or https URL`},
		{"bad memory bucket", []string{"monitor", "--memory-bucket", "a.b"}, nil, `--memory-bucket "a.b": `},
		{"bad alertmanager", []string{"monitor", "--alertmanager", "am:9093"}, nil, `--alertmanager (not shown) is not an http or https URL`},
		{"alertmanager query", []string{"monitor", "--alertmanager", "http://am:9093/#x"}, nil, `--alertmanager "http://am:9093": a query or fragment (not shown) has no place in an Alertmanager's base URL`},
		{"alertmanager twice", []string{"monitor", "--alertmanager", "http://am:9093", "--alertmanager", "http://am:9093"}, nil, `--alertmanager lists an Alertmanager twice`},
		{"alertmanager env", []string{"monitor"}, map[string]string{"HBMESH_ALERTMANAGER": "http://a:9093,ftp://b"}, `$HBMESH_ALERTMANAGER "ftp://b" is not an http or https URL`},
		{"alert label without alertmanager", []string{"monitor", "--alert-label", "cluster=prod"}, nil, `--alert-label needs --alertmanager`},
		{"alert label set by hbmesh", []string{"monitor", "--alertmanager", "http://am:9093", "--alert-label", "peer=x"}, nil, `"peer" is set by hbmesh`},
		{"alert label name", []string{"monitor", "--alertmanager", "http://am:9093", "--alert-label", "my-team=x"}, nil, `"my-team" is not a label name`},
		{"alert resend without alertmanager", []string{"monitor", "--alert-resend", "10s"}, nil, `--alert-resend needs --alertmanager`},
		{"external url alone", []string{"monitor", "--external-url", "http://mon:8080/"}, nil, `--external-url needs --alertmanager or --webhook`},
		{"webhook header without webhook", []string{"monitor", "--webhook-header", "X-Token=t"}, nil, `--webhook-header needs --webhook`},
		{"webhook header form", []string{"monitor", "--webhook", "http://h/", "--webhook-header", "X-Token"}, nil, `--webhook-header: not NAME=VALUE, NAME=@FILE or NAME=env:VAR (a header name is letters, digits and -; write "Authorization=Bearer ...", not "Authorization: ...")`},
		{"webhook header name", []string{"monitor", "--webhook", "http://h/", "--webhook-header", "X Token=t"}, nil, `--webhook-header: not NAME=VALUE`},
		{"webhook header file", []string{"monitor", "--webhook", "http://h/", "--webhook-header", "Authorization=@/nonexistent/token"}, nil, `--webhook-header Authorization "/nonexistent/token": no such file or directory`},
		{"webhook header env", []string{"monitor", "--webhook", "http://h/", "--webhook-header", "Authorization=env:HOOK_TOKEN"}, nil, `--webhook-header Authorization: $HOOK_TOKEN is empty or not set`},
		{"alert header line break", []string{"monitor", "--alertmanager", "http://am:9093", "--alert-header", "Authorization=env:AM_TOKEN"}, map[string]string{"AM_TOKEN": "Bearer x\r\nX-Evil: 1"}, `--alert-header Authorization: the value holds a line break`},
		{"metrics addr same as http", []string{"monitor", "--http", "127.0.0.1:9464", "--metrics-addr", "9464"}, nil, `--http and --metrics-addr name the same address`},
		{"notify without stream", []string{"notify", "--on-event", "true"}, nil, `missing flags: --stream=NAME`},
		{"notify without output", []string{"notify", "--stream", "EV"}, nil, `no output: give --on-event, --webhook or --alertmanager`},
		{"notify bad stream", []string{"notify", "--stream", "a.b", "--on-event", "true"}, nil, `invalid notify config: Stream "a.b"`},
		{"notify hold without alertmanager", []string{"notify", "--stream", "EV", "--on-event", "true", "--alert-hold", "1h"}, nil, `--alert-hold needs --alertmanager`},
		{"notify states without hook", []string{"notify", "--stream", "EV", "--webhook", "http://h/", "--on-event-states", "dead"}, nil, `--on-event-states needs --on-event`},
		{"notify ack wait", []string{"notify", "--stream", "EV", "--on-event", "true", "--ack-wait", "1ms"}, nil, `--ack-wait: 1ms is outside`},
		{"no-memory and state-file", []string{"monitor", "--no-memory", "--state-file", "x.json"}, nil, `--no-memory and --state-file are exclusive`},
		{"env no-memory and bucket", []string{"monitor"}, map[string]string{"HBMESH_NO_MEMORY": "true", "HBMESH_MEMORY_BUCKET": "b"}, `$HBMESH_NO_MEMORY and $HBMESH_MEMORY_BUCKET are exclusive`},
		{"env per-peer cap without per-peer", []string{"monitor"}, map[string]string{"HBMESH_PER_PEER_METRICS_CAP": "5"}, `$HBMESH_PER_PEER_METRICS_CAP needs --per-peer-metrics`},
		{"stream without publishing", []string{"monitor", "--no-publish-events", "--events-stream", "EV"}, nil, `--events-stream needs published events`},
		{"per-peer without http", []string{"monitor", "--per-peer-metrics"}, nil, `--per-peer-metrics needs --http or --metrics-addr`},
		{"six replicas", []string{"monitor", "--replicas", "6"}, nil, `6 is outside [1, 5]`},
		{"beat queue too small", []string{"monitor", "--beat-queue", "10"}, nil, `--beat-queue: 10 is outside [1024, 16777216], or 0 for the automatic size`},
		{"negative beat queue", []string{"monitor", "--beat-queue=-1"}, nil, `-1 is outside [1024, 16777216]`},
		{"replicas with nothing to replicate", []string{"monitor", "--state-file", "x.json", "--replicas", "3"}, nil, `--replicas applies to the KV restart memory and --events-stream`},
		{"monitor bad id", []string{"monitor", "--id", "a.b"}, nil, `invalid id "a.b"`},
		{"alertmanager api path", []string{"monitor", "--alertmanager", "http://am:9093/api/v2/alerts"}, nil, `--alertmanager: give each Alertmanager's base URL (http://am:9093), without /api/v2/alerts, which hbmesh adds`},
		{"notify alertmanager api path", []string{"notify", "--stream", "EV"}, map[string]string{"HBMESH_ALERTMANAGER": "http://am:9093,https://am-2/prefix/api/v2/"}, `$HBMESH_ALERTMANAGER: give each Alertmanager's base URL`},
		{"url typo", []string{"node", "-s", "nats:/127.0.0.1:4222"}, nil, `--server "nats:/127.0.0.1:4222": more than a host and port; want nats://`},
		{"url scheme", []string{"probe", "web-1"}, map[string]string{"NATS_URL": "nats://a:4222, http://b:4222"}, `$NATS_URL "http://b:4222": scheme "http"`},
		{"url without host", []string{"status", "-s", "nats://"}, nil, `--server "nats://": no host`},
		{"bad inbox prefix", []string{"monitor", "--inbox-prefix", "_INBOX.>"}, nil, `--inbox-prefix "_INBOX.>": want subject tokens without wildcards`},
		{"store-dir without embedded", []string{"monitor", "--store-dir", "/tmp/x"}, nil, `--store-dir needs --embedded`},
		{"embedded with context", []string{"monitor", "--embedded", "--context", "x"}, nil, `--context and --embedded are exclusive`},
		{"missing context", []string{"probe", "x", "--context", "nosuch"}, map[string]string{"XDG_CONFIG_HOME": "/nonexistent"}, `--context nosuch`},
		{"status bad wait", []string{"status", "--wait", "0s"}, nil, `0s is outside`},
		{"status extra arg", []string{"status", "x"}, nil, `unexpected argument x`},
		{"status interval without watch", []string{"status", "--interval", "1s"}, nil, `--interval needs --watch`},
		{"status fail-on zombie", []string{"status", "--fail-on", "dead,zombie"}, nil, `hbmesh status: invalid status config: --fail-on: unknown condition "zombie"`},
		{"status fail-on watch", []string{"status", "-w", "--fail-on", "dead"}, nil, `hbmesh status: invalid status config: --fail-on needs a single round`},
		{"watch fail-on", []string{"watch", "--fail-on", "dead"}, nil, `unknown flag --fail-on`},
		{"healthcheck bad url", []string{"healthcheck", "--url", "localhost:8080"}, nil, `--url "localhost:8080": want an http or https URL`},
		{"bench without name", []string{"bench"}, nil, `hbmesh bench: expected one of "ingest", "detect", "scale", "probe"`},
		{"bench unknown", []string{"bench", "warp"}, nil, `hbmesh bench: unknown command "warp"`},
		{"bench bad flag", []string{"bench", "ingest", "--bogus"}, nil, `hbmesh bench ingest: unknown flag --bogus`},
		{"bench single-dash flag", []string{"bench", "ingest", "-live"}, nil, `hbmesh bench ingest: unknown flag -l`},
		{"bench bad size", []string{"bench", "probe", "--count", "0"}, nil, `hbmesh bench probe: invalid bench config: --count 0 must be positive`},
		{"bench kills", []string{"bench", "detect", "-n", "10", "-k", "20"}, nil, `hbmesh bench detect: invalid bench config: --kills 20 must be within [0, --nodes 10]`},
		{"bench crash kills", []string{"bench", "detect", "--crash", "-k", "1"}, nil, `--kills 1 with --crash must be within [2, 10000]`},
		{"bench crash intervals", []string{"bench", "detect", "--crash", "--intervals", "1s,10ms"}, nil, `--intervals 10ms is below 100ms`},
		{"bench extra arg", []string{"bench", "probe", "extra"}, nil, `hbmesh bench probe: unexpected argument extra`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			code, stdout, stderr := runSync(t, getenv, tt.args...)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d", code, exitUsage)
			}
			if stdout != "" {
				t.Errorf("stdout not empty: %q", stdout)
			}
			if n := strings.Count(stderr, "\n"); n != 1 || !strings.HasSuffix(stderr, "\n") {
				t.Errorf("stderr has %d lines, want exactly one: %q", n, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.want)
			}
			if !strings.HasPrefix(stderr, "hbmesh") {
				t.Errorf("stderr %q does not start with the command name", stderr)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"help"}, []string{"Commands:", "node", "monitor", "probe", "server", "demo", "status", "watch", "healthcheck", "bench ingest", "completion"}},
		{[]string{"--help"}, []string{"Commands:"}},
		{[]string{"help", "help"}, []string{"Commands:"}},
		{[]string{"help", "--help"}, []string{"Usage: hbmesh help [<command> ...]"}},
		{[]string{"help", "probe"}, []string{"Usage: hbmesh probe <id>"}},
		{[]string{"node", "--help"}, []string{"Usage:", "--interval", "default 1s", "-s, --server", "$NATS_URL", "$HBMESH_INTERVAL", "$HBMESH_LABELS", "Examples:"}},
		{[]string{"node", "-h"}, []string{"--label=KEY=VALUE"}},
		{[]string{"monitor", "-h"}, []string{"--json", "--detector", "--embedded", "$NATS_CREDS",
			"Detection flags:", "HTTP flags:", "Events flags:", "Memory flags:", "Connection flags:", "Logging flags:",
			"--http=ADDR", "--no-publish-events", "--state-file=FILE", "--inbox-prefix=PREFIX", "--context=NAME", "$NATS_CONTEXT", "--store-dir",
			"--host 0.0.0.0", "--max-peers=N", "id seen only once", "--beat-queue=BEATS", "default 0: automatic",
			"--retention=DURATION", "$HBMESH_ID", "$HBMESH_HTTP", "$HBMESH_ON_EVENT", "$HBMESH_STATE,"}},
		{[]string{"help"}, []string{"127.0.0.1:4222", "--host 0.0.0.0"}},
		{[]string{"status", "--help"}, []string{"--watch", "--wait", "-s, --server", "dead, suspect, split"}},
		{[]string{"watch", "--help"}, []string{"--interval"}},
		{[]string{"healthcheck", "--help"}, []string{"--url=URL", "default http://127.0.0.1:8080/readyz"}},
		{[]string{"bench", "--help"}, []string{"ingest", "detect", "scale", "probe", "bench node", "one JSON line", "Examples:"}},
		{[]string{"bench", "ingest", "--help"}, []string{"against a bare subscriber", "Examples: hbmesh bench ingest"}},
		{[]string{"bench", "detect", "--help"}, []string{"--kills of them", "Examples: hbmesh bench detect"}},
		{[]string{"bench", "scale", "--help"}, []string{"heap per peer", "Examples: hbmesh bench scale"}},
		{[]string{"bench", "probe", "--help"}, []string{"bare responder", "Examples: hbmesh bench probe"}},
		{[]string{"bench", "node", "--help"}, []string{"/proc", "Examples: hbmesh bench node"}},
		{[]string{"help", "bench"}, []string{"ingest"}},
		{[]string{"bench", "ingest", "-h"}, []string{"Usage: hbmesh bench ingest", "--live", "--bare-chan", "--quick", "-n, --nodes"}},
		{[]string{"server", "--help"}, []string{"-p, --port", "-a, --addr", "--jetstream", "--js", "--routes"}},
		{[]string{"demo", "--help"}, []string{"--chaos", "--nodes", "killed connection dropped without a goodbye -> dead"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := runSync(t, nil, tt.args...)
			if code != exitOK || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			// Help wraps to the terminal's width: compare words.
			words := strings.Join(strings.Fields(stdout), " ")
			for _, w := range tt.want {
				if !strings.Contains(words, w) {
					t.Errorf("usage lacks %q:\n%s", w, stdout)
				}
			}
		})
	}
	if _, stdout, _ := runSync(t, nil, "node", "--help"); strings.Contains(stdout, "drop-beats") {
		t.Error("hidden flag --drop-beats listed")
	}
	// status waits --wait for its answers, not --timeout.
	if _, stdout, _ := runSync(t, nil, "status", "--help"); strings.Contains(strings.Join(strings.Fields(stdout), " "), "status also wait") {
		t.Errorf("status --help says --timeout is its wait:\n%s", stdout)
	}
	if code, _, stderr := runSync(t, nil, "help", "frobnicate"); code != exitUsage || !strings.Contains(stderr, `unknown command "frobnicate"`) {
		t.Errorf("help frobnicate: exit %d, stderr %q", code, stderr)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"node", "--version"}} {
		code, stdout, stderr := runSync(t, nil, args...)
		want := fmt.Sprintf("hbmesh %s\n  commit:   %s\n  built:    %s\n  go:       %s\n  platform: %s/%s\n",
			buildVersion().Version, buildVersion().Commit, buildVersion().Date, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		if code != 0 || stdout != want || stderr != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %q", args, code, stdout, stderr, want)
		}
	}
	// Without -ldflags the test binary has no version of its own.
	if v := buildVersion(); v.Version != "dev" || v.Commit == "" || v.Date == "" {
		t.Errorf("buildVersion() = %+v", v)
	}
}

func TestNoArgs(t *testing.T) {
	code, _, stderr := runSync(t, nil)
	if code != exitUsage || !strings.Contains(stderr, "Commands:") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

// parse parses args as run would, without running the command.
func parse(t *testing.T, args ...string) (*cli, error) {
	t.Helper()
	c, _, err := parseEnv(t, nil, args...)
	return c, err
}

// parseEnv parses args in the environment environ, and returns the
// flags' sources too.
func parseEnv(t *testing.T, environ map[string]string, args ...string) (*cli, *env, error) {
	t.Helper()
	var c cli
	e := &env{stdout: io.Discard, stderr: io.Discard, getenv: func(k string) string { return environ[k] }, from: map[string]string{}}
	p, err := newParser(context.Background(), &c, e, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Parse(args)
	return &c, e, err
}

// TestEnvPrecedence: a flag beats its variable, which beats the default;
// HBMESH_LABELS is the comma-separated --label.
func TestEnvPrecedence(t *testing.T) {
	environ := map[string]string{"HBMESH_ID": "env-id", "HBMESH_LABELS": "role=web,zone=eu-1", "HBMESH_INTERVAL": "2s", "NATS_URL": "nats://env:4222"}
	c, e, err := parseEnv(t, environ, "node", "--id", "flag-id")
	if err != nil {
		t.Fatal(err)
	}
	n := c.Node
	if n.ID != "flag-id" || n.Interval != 2*time.Second || !maps.Equal(n.Label, map[string]string{"role": "web", "zone": "eu-1"}) || n.Conn.Server != "nats://env:4222" {
		t.Errorf("node = id %q, interval %v, labels %v, server %q", n.ID, n.Interval, n.Label, n.Conn.Server)
	}
	if e.source("id") != "--id" || e.source("interval") != "$HBMESH_INTERVAL" || e.source("label") != "$HBMESH_LABELS" || e.given("prefix") {
		t.Errorf("sources = %v", e.from)
	}
	c, _, err = parseEnv(t, environ, "node", "--label", "a=b", "--interval", "3s")
	if err != nil {
		t.Fatal(err)
	}
	if n := c.Node; n.ID != "env-id" || n.Interval != 3*time.Second || !maps.Equal(n.Label, map[string]string{"a": "b"}) {
		t.Errorf("node = id %q, interval %v, labels %v", n.ID, n.Interval, n.Label)
	}
	c, _, err = parseEnv(t, map[string]string{"HBMESH_SUSPECT_AFTER": "4", "HBMESH_DEAD_AFTER": "6", "HBMESH_HTTP": "9090", "HBMESH_ON_EVENT_STATES": "dead,left"}, "monitor", "--on-event", "true")
	if err != nil {
		t.Fatal(err)
	}
	if m := c.Monitor; m.Detection.SuspectAfter != 4 || m.Detection.DeadAfter != 6 || m.HTTP.Addr != "127.0.0.1:9090" || len(m.Events.Hook.States) != 2 {
		t.Errorf("monitor = %+v", m)
	}
}

// TestRetentionFlag: --retention reaches the monitor's config, and is
// bounded.
func TestRetentionFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want time.Duration
	}{
		{nil, 24 * time.Hour},
		{[]string{"--retention", "90m"}, 90 * time.Minute},
	} {
		c, err := parse(t, append([]string{"monitor"}, tt.args...)...)
		if err != nil {
			t.Fatal(err)
		}
		if cfg, err := c.Monitor.Detection.config(nil); err != nil || cfg.Retention != tt.want {
			t.Fatalf("%q gave retention %v (err %v), want %v", tt.args, cfg.Retention, err, tt.want)
		}
	}
	if _, err := parse(t, "monitor", "--retention", "10s"); err == nil || !strings.Contains(err.Error(), "--retention") {
		t.Fatalf("--retention 10s: err %v, want an error naming the flag", err)
	}
}
