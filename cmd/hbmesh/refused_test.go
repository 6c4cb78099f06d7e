package main

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/internal/sectest"
)

// inboxTokens matches the random tokens of an inbox after its prefix, so
// that "_INBOX_x.<nuid>.*" can be compared as "_INBOX_x.INBOX".
var inboxTokens = regexp.MustCompile(`(Subscription to "_INBOX[A-Za-z0-9_]*)\.[A-Za-z0-9.*]+"`)

// TestRefusedSubjects: a command the server's permissions refuse what it
// cannot work without stops at once, exit 1, with one line that says what
// was refused, that the permissions refuse it, whose credentials to check
// and what to fix, instead of logging a warning at every beat (a node
// refused its beat subject, or a node whose id is not its user's name),
// running with unanswerable probes (a node refused its probe
// subscription, a monitor on the wrong inbox prefix), watching nothing (a
// monitor refused its beats) or waiting out its timeout (probe, status and
// notify). Nothing before that line says the network or the URL is at
// fault, and the password is never printed. The same users with the right
// settings work, so the check is on the refusal, not on the users.
func TestRefusedSubjects(t *testing.T) {
	const password = "pw-S3cret-Refused"
	perms := func(pub, sub []string) *server.Permissions {
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: pub},
			Subscribe: &server.SubjectPermission{Allow: sub},
			Response:  &server.ResponsePermission{MaxMsgs: 1},
		}
	}
	srv := natstest.Start(t, func(c *embedded.Config) {
		c.Options = func(o *server.Options) {
			monPub := []string{"hb.*.probe", "hb.events.>"}
			o.Users = []*server.User{
				{Username: "web-1", Password: password, Permissions: perms([]string{"hb.web-1"}, []string{"hb.web-1.probe"})},
				// a may not publish its beats; b may not subscribe to its probes.
				{Username: "a", Password: password, Permissions: perms([]string{"hb.x"}, []string{"hb.a.probe"})},
				{Username: "b", Password: password, Permissions: perms([]string{"hb.b"}, []string{"hb.x"})},
				{Username: "mon", Password: password, Permissions: perms(monPub, []string{"hb.*", "hb.monitor.v1.>", "$SRV.>", "_INBOX_mon.>"})},
				{Username: "blind", Password: password, Permissions: perms(monPub, []string{"hb.monitor.v1.>", "$SRV.>", "_INBOX_blind.>"})},
				{Username: "ops", Password: password, Permissions: perms([]string{"hb.monitor.v1.>"}, []string{"hb.>", "_INBOX_ops.>"})},
				{Username: "ntf", Password: password, Permissions: perms([]string{"$JS.API.STREAM.INFO.EV"}, []string{"_INBOX_ntf.>"})},
			}
		}
	})
	as := func(user string, args ...string) []string {
		return append(args, "-s", srv.ClientURL(), "--user", user, "--password", password)
	}

	nd := start(t, as("web-1", "node", "--id", "web-1", "--interval", "100ms")...)
	natstest.WaitInterest(t, srv, "hb.web-1.probe")
	mon := start(t, as("mon", "monitor", "--id", "mon", "--inbox-prefix", "_INBOX_mon", "--no-memory", "--no-fast-path")...)
	natstest.WaitInterest(t, srv, "hb.monitor.v1.peers")
	if code, out, stderr := runSync(t, nil, as("mon", "probe", "web-1", "--inbox-prefix", "_INBOX_mon")...); code != exitOK {
		t.Fatalf("probe with the monitor's user: exit %d, %s%s", code, out, stderr)
	}
	if code, out, stderr := runSync(t, nil, as("ops", "status", "--inbox-prefix", "_INBOX_ops")...); code != exitOK || !strings.Contains(out, "web-1") {
		t.Fatalf("status with the ops user: exit %d, %s%s", code, out, stderr)
	}

	// The lines, whole; INBOX stands for the random tokens of an inbox.
	nodeLine := func(id, what, violation, user, from string) string {
		return fmt.Sprintf(`hbmesh node: the server's permissions refuse node %q its %s (Permissions Violation for %s): allow user %q (--user) to publish hb.%s and subscribe to hb.%s.probe, or, with per-host credentials, make the id the user's name (the id from %s)`,
			id, what, violation, user, id, id, from)
	}
	inboxLine := func(cmd, prefix, user string) string {
		return fmt.Sprintf(`hbmesh %s: the server's permissions refuse replies on inbox prefix %q (Permissions Violation for Subscription to "%s.INBOX"): set --inbox-prefix to the prefix user %q (--user) may subscribe to (_INBOX_<user> with the permissions of docs/SECURITY.md)`,
			cmd, prefix, prefix, user)
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string // the last line of stderr is one of these
	}{
		{"node refused its beat subject", nil, as("a", "node", "--id", "a"),
			[]string{nodeLine("a", "beats", `Publish to "hb.a"`, "a", "--id")}},
		{"node refused its probe subscription", nil, as("b", "node", "--id", "b"),
			[]string{nodeLine("b", "probes", `Subscription to "hb.b.probe"`, "b", "--id")}},
		// Both are refused; whichever the server reports first is said.
		{"node id not the user's name", nil, as("web-1", "node", "--id", "web-2"), []string{
			nodeLine("web-2", "beats", `Publish to "hb.web-2"`, "web-1", "--id"),
			nodeLine("web-2", "probes", `Subscription to "hb.web-2.probe"`, "web-1", "--id"),
		}},
		{"node id from the environment", map[string]string{"HBMESH_ID": "web-2"}, as("web-1", "node"), []string{
			nodeLine("web-2", "beats", `Publish to "hb.web-2"`, "web-1", "$HBMESH_ID"),
			nodeLine("web-2", "probes", `Subscription to "hb.web-2.probe"`, "web-1", "$HBMESH_ID"),
		}},
		{"monitor refused its beats", nil, as("blind", "monitor", "--id", "blind", "--inbox-prefix", "_INBOX_blind", "--no-memory", "--no-fast-path"),
			[]string{`hbmesh monitor: the server's permissions refuse the monitor its beats (Permissions Violation for Subscription to "hb.*"): allow user "blind" (--user) to subscribe to hb.*`}},
		{"monitor on another inbox prefix", nil, as("mon", "monitor", "--id", "mon2", "--inbox-prefix", "_INBOX_monitor1", "--no-memory", "--no-fast-path"),
			[]string{inboxLine("monitor", "_INBOX_monitor1", "mon")}},
		{"probe by a user that may not", nil, as("ops", "probe", "web-1", "--inbox-prefix", "_INBOX_ops"),
			[]string{`hbmesh probe: the server's permissions refuse it (Permissions Violation for Publish to "hb.web-1.probe"): allow that to user "ops" (--user), or connect as a user that may`}},
		{"probe on the default inbox", nil, as("mon", "probe", "web-1"), []string{inboxLine("probe", "_INBOX", "mon")}},
		{"status on the default inbox", nil, as("ops", "status"), []string{inboxLine("status", "_INBOX", "ops")}},
		{"notify on the default inbox", nil, as("ntf", "notify", "--stream", "EV", "--on-event", "true"), []string{inboxLine("notify", "_INBOX", "ntf")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startEnv(t, tt.env, tt.args...)
			var code int
			waitFor(t, 15*time.Second, "the command to stop", func() bool {
				select {
				case code = <-p.done:
					close(p.done)
					return true
				default:
					return false
				}
			})
			stderr := p.stderr.String()
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			last := lines[len(lines)-1]
			shown := inboxTokens.ReplaceAllString(last, `$1.INBOX"`)
			if code != exitFailure || !slices.Contains(tt.want, shown) {
				t.Errorf("exit %d, last line\n%s\nwant exit %d and one of\n%s\nstderr:\n%s", code, last, exitFailure, strings.Join(tt.want, "\n"), stderr)
			}
			if strings.Count(stderr, "Permissions Violation") != 1 {
				t.Errorf("the refusal is not said exactly once:\n%s", stderr)
			}
			for _, misleading := range []string{"not connected", "connection refused", "disconnected", "listening", "goodbye"} {
				if strings.Contains(strings.Join(lines[:len(lines)-1], "\n"), misleading) {
					t.Errorf("a line before the refusal says %q, which blames the network:\n%s", misleading, stderr)
				}
			}
			if strings.Contains(stderr+p.stdout.String(), password) {
				t.Errorf("the password is printed:\n%s", stderr)
			}
		})
	}
	if code := nd.stop(t); code != exitOK {
		t.Errorf("node web-1: exit %d\n%s", code, nd.stderr)
	}
	if code := mon.stop(t); code != exitOK {
		t.Errorf("monitor: exit %d\n%s", code, mon.stderr)
	}
}

// TestPrincipal: a refusal names the credentials to check by what the
// operator gave: a user, a file, where a token came from; never the
// password, token or key.
func TestPrincipal(t *testing.T) {
	akp, _ := nkeys.CreateAccount()
	user := newTestUser(t, akp)
	const (
		password = "pw-S3cret-Principal"
		token    = "tok-S3cret-Principal"
	)
	credsFile := writeFile(t, "node.creds", user.creds)
	seedFile := writeFile(t, "node.nk", user.seed)
	pki := sectest.NewPKI(t)
	certFile := pki.ClientCert
	home, writeCtx := newContextHome(t)
	dataCreds := "data:;base64," + base64.StdEncoding.EncodeToString([]byte(user.creds))
	writeCtx("ctx-user", contextJSON("nats://127.0.0.1:4222", "user", "someone", "password", password))
	writeCtx("ctx-creds-file", contextJSON("nats://127.0.0.1:4222", "creds", credsFile))
	writeCtx("ctx-creds-data", contextJSON("nats://127.0.0.1:4222", "creds", dataCreds))
	writeCtx("ctx-token", contextJSON("nats://127.0.0.1:4222", "token", token))
	writeCtx("ctx-none", contextJSON("nats://127.0.0.1:4222"))
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"user", nil, []string{"--user", "web-1", "--password", password}, `user "web-1" (--user)`},
		{"user from the environment", map[string]string{"NATS_USER": "web-1", "NATS_PASSWORD": password}, nil, `user "web-1" ($NATS_USER)`},
		{"creds", nil, []string{"--creds", credsFile}, `the user of --creds ` + strconv.Quote(credsFile)},
		{"nkey", nil, []string{"--nkey", seedFile}, `the nkey of --nkey ` + strconv.Quote(seedFile)},
		{"token", nil, []string{"--token", token}, `the token of --token`},
		{"token from the environment", map[string]string{"NATS_TOKEN": token}, nil, `the token of $NATS_TOKEN`},
		{"user in the URL", nil, []string{"-s", "nats://h1:4222,nats://web-1:" + password + "@h2:4222"}, `user "web-1" of the --server URL`},
		{"token in the URL", map[string]string{"NATS_URL": "nats://" + token + "@h:4222"}, nil, `the token in the $NATS_URL URL`},
		{"TLS certificate", nil, []string{"--tlscert", certFile, "--tlskey", pki.ClientKey}, `the TLS client certificate of --tlscert ` + strconv.Quote(certFile)},
		{"nothing", nil, nil, `the server's user for clients without credentials (no_auth_user)`},
		{"context user", map[string]string{"XDG_CONFIG_HOME": home}, []string{"--context", "ctx-user"}, `user "someone" (from --context ctx-user)`},
		{"context creds file", map[string]string{"XDG_CONFIG_HOME": home}, []string{"--context", "ctx-creds-file"}, `the user of the creds file ` + strconv.Quote(credsFile) + ` (from --context ctx-creds-file)`},
		{"context creds inline", map[string]string{"XDG_CONFIG_HOME": home}, []string{"--context", "ctx-creds-data"}, `the creds of --context ctx-creds-data`},
		{"context token", map[string]string{"XDG_CONFIG_HOME": home}, []string{"--context", "ctx-token"}, `the credentials of --context ctx-token`},
		{"context without credentials", map[string]string{"XDG_CONFIG_HOME": home}, []string{"--context", "ctx-none"}, `the server's user for clients without credentials (no_auth_user)`},
		{"a flag over the context", map[string]string{"XDG_CONFIG_HOME": home}, []string{"--context", "ctx-user", "--creds", credsFile}, `the user of --creds ` + strconv.Quote(credsFile)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, e, err := parseEnv(t, tc.env, append([]string{"node"}, tc.args...)...)
			for _, a := range tc.args {
				if name, ok := strings.CutPrefix(a, "--"); ok {
					e.from[name] = a // as run records the flags on the command line
				}
			}
			if err == nil {
				err = c.Node.Conn.validate(e)
			}
			if err != nil {
				t.Fatal(err)
			}
			got := c.Node.Conn.principal()
			if got != tc.want {
				t.Errorf("principal = %s, want %s", got, tc.want)
			}
			for _, secret := range []string{password, token, user.seed, user.jwt} {
				if strings.Contains(got, secret) {
					t.Errorf("principal %s holds a secret", got)
				}
			}
		})
	}
}
