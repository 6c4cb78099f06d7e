package main

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/internal/natstest"
)

// TestRefusedSubjects: a command the server refuses what it cannot work
// without stops at once with one line that names the refused subject and
// the setting to fix, instead of logging a warning at every beat (a
// node whose id is not its user's name), running with unanswerable
// probes (a monitor on the wrong inbox prefix) or waiting out its
// timeout (probe, status, notify). The same users with the right settings
// work, so the check is on the refusal, not on the users.
func TestRefusedSubjects(t *testing.T) {
	perms := func(pub, sub []string) *server.Permissions {
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: pub},
			Subscribe: &server.SubjectPermission{Allow: sub},
			Response:  &server.ResponsePermission{MaxMsgs: 1},
		}
	}
	srv := natstest.Start(t, func(c *embedded.Config) {
		c.Options = func(o *server.Options) {
			o.Users = []*server.User{
				{Username: "web-1", Password: "pw", Permissions: perms([]string{"hb.web-1"}, []string{"hb.web-1.probe"})},
				{Username: "mon", Password: "pw", Permissions: perms([]string{"hb.*.probe", "hb.events.>"}, []string{"hb.*", "hb.monitor.v1.>", "$SRV.>", "_INBOX_mon.>"})},
				{Username: "ops", Password: "pw", Permissions: perms([]string{"hb.monitor.v1.>"}, []string{"hb.>", "_INBOX_ops.>"})},
				{Username: "ntf", Password: "pw", Permissions: perms([]string{"$JS.API.STREAM.INFO.EV"}, []string{"_INBOX_ntf.>"})},
			}
		}
	})
	as := func(user string, args ...string) []string {
		return append(args, "-s", srv.ClientURL(), "--user", user, "--password", "pw")
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

	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"node id not the user's name", nil, as("web-1", "node", "--id", "web-2"),
			`hbmesh node: the server refuses node "web-2" its subjects (Permissions Violation for `},
		{"node id from the environment", map[string]string{"HBMESH_ID": "web-2"}, as("web-1", "node"),
			`(the id from $HBMESH_ID)`},
		{"monitor on another inbox prefix", nil, as("mon", "monitor", "--id", "mon2", "--inbox-prefix", "_INBOX_monitor1", "--no-memory", "--no-fast-path"),
			`hbmesh monitor: the server refuses replies on inbox prefix "_INBOX_monitor1" (Permissions Violation for Subscription to "_INBOX_monitor1.`},
		{"probe by a user that may not", nil, as("ops", "probe", "web-1", "--inbox-prefix", "_INBOX_ops"),
			`hbmesh probe: the server refuses it: Permissions Violation for Publish to "hb.web-1.probe"`},
		{"probe on the default inbox", nil, as("mon", "probe", "web-1"),
			`hbmesh probe: the server refuses replies on inbox prefix "_INBOX" (`},
		{"status on the default inbox", nil, as("ops", "status"),
			`set --inbox-prefix to the prefix the credentials allow`},
		{"notify on the default inbox", nil, as("ntf", "notify", "--stream", "EV", "--on-event", "true"),
			`hbmesh notify: the server refuses replies on inbox prefix "_INBOX" (`},
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
			if code != exitFailure || !strings.Contains(last, tt.want) {
				t.Errorf("exit %d, last line %q; want exit %d and %q\nstderr:\n%s", code, last, exitFailure, tt.want, stderr)
			}
			if strings.Count(stderr, "Permissions Violation") != 1 {
				t.Errorf("the refusal is not said exactly once:\n%s", stderr)
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
