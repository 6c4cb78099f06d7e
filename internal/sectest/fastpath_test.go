package sectest_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/internal/syncio"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/node"
	"github.com/hbmesh/hbmesh/wire"
)

// accountsConf is SECURITY.md's "Crash fast path" setup around the
// template's permission sets: the mesh's users in an account that
// imports its own DISCONNECT advisories from the system account.
const accountsConf = `
include "permissions.conf"
accounts {
  SYS {
    exports: [ { stream: "$SYS.ACCOUNT.*.DISCONNECT", account_token_position: 3 } ]
  }
  HBMESH {
    users: [
      { user: node-a, password: "node-a-example-password",
        permissions: {
          publish: { allow: ["hb.node-a"] }
          subscribe: { allow: ["hb.node-a.probe"] }
          allow_responses: true
        }
      }
      { user: monitor1, password: "monitor1-example-password", permissions: $MONITOR_PERMISSIONS }
      { user: notify1, password: "notify1-example-password", permissions: $NOTIFY_PERMISSIONS }
      { user: ops, password: "ops-example-password", permissions: $OPS_PERMISSIONS }
    ]
    imports: [ { stream: { account: SYS, subject: "$SYS.ACCOUNT.HBMESH.DISCONNECT" } } ]
  }
}
system_account: SYS
`

// TestFastPathWithAccounts: with SECURITY.md's accounts and the
// template's monitor permissions, the monitor may subscribe to the
// advisories (no permission violation), receives them, and convicts a
// node whose connection ends with reason disconnected.
func TestFastPathWithAccounts(t *testing.T) {
	dir := t.TempDir()
	perms, err := os.ReadFile("../../deploy/auth/permissions.conf")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"permissions.conf": perms, "accounts.conf": []byte(accountsConf)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	srv := natstest.Start(t, func(c *embedded.Config) { c.ConfigFile = filepath.Join(dir, "accounts.conf") })
	login := func(user string) nats.Option { return nats.UserInfo(user, user+"-example-password") }

	mon := connect(t, srv.ClientURL(), login("monitor1"), nats.CustomInboxPrefix(monitorInbox))
	m, rec := startMonitor(t, mon.Conn)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if err := m.CheckFastPath(ctx, func(name string) (*nats.Conn, error) {
		return nats.Connect(srv.ClientURL(), login("monitor1"), nats.Name(name), nats.NoReconnect())
	}); err != nil {
		t.Fatalf("CheckFastPath: %v", err)
	}

	// A node's connection, named as hbmesh names it, beating rarely: only
	// the fast path can convict it while the test runs.
	o := nats.GetDefaultOptions()
	o.ReconnectWait = 50 * time.Millisecond // natstest.Connect's
	window, _ := node.ReconnectWindow(&o)
	name, err := wire.NodeConn{Prefix: wire.DefaultPrefix, ID: "node-a", Reconnect: window}.Name()
	if err != nil {
		t.Fatal(err)
	}
	nc := connect(t, srv.ClientURL(), login("node-a"), nats.Name(name))
	cfg := node.DefaultConfig()
	cfg.ID, cfg.Interval = "node-a", time.Hour
	n, err := node.New(nc.Conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	run(t, "node node-a", n.Run, node.ErrConnClosed)
	rec.waitFor(t, 0, "node-a", monitor.StateAlive)

	nc.Close()
	i := rec.waitFor(t, 0, "node-a", monitor.StateDead)
	if ev := rec.all()[i]; ev.Reason != monitor.ReasonDisconnected {
		t.Fatalf("dead event %v, want reason disconnected", ev)
	}
	if st := m.Stats(); st.Checks["dead"] != 1 {
		t.Fatalf("checks %v", st.Checks)
	}
}

// The monitor's two grants for the crash fast path in permissions.conf.
const (
	userInfoGrant   = `"$SYS.REQ.USER.INFO",`
	advisoriesGrant = `"$SYS.ACCOUNT.*.DISCONNECT",`
)

// TestFastPathOffWithoutPermission runs hbmesh monitor as a user with
// the template's monitor permissions minus the crash fast path's grants,
// with SECURITY.md's accounts: the monitor says once, at start, that the
// fast path is off and which grant is missing; it never subscribes to the
// advisories, so nothing is refused but, without USER.INFO, the one
// question that finds out; and a killed node is still dead, by the
// timeout path.
func TestFastPathOffWithoutPermission(t *testing.T) {
	bin := buildCLI(t)
	perms, err := os.ReadFile("../../deploy/auth/permissions.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		drop    []string
		missing string // what the monitor's one line names
		refused int    // publishes the server refuses: the question, if it may not ask
	}{
		{"without both grants", []string{userInfoGrant, advisoriesGrant}, `may not publish \"$SYS.REQ.USER.INFO\"`, 1},
		{"without the subscription", []string{advisoriesGrant}, `may not subscribe to \"$SYS.ACCOUNT.*.DISCONNECT\"`, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := string(perms)
			for _, g := range c.drop {
				if strings.Count(p, g) != 1 {
					t.Fatalf("permissions.conf grants %s %d times, want once", g, strings.Count(p, g))
				}
				p = strings.Replace(p, g, "", 1)
			}
			dir := t.TempDir()
			for name, data := range map[string]string{"permissions.conf": p, "accounts.conf": accountsConf} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var serverLog syncio.Writer
			srv := startServer(t, filepath.Join(dir, "accounts.conf"), func(c *embedded.Config) {
				c.Logger = slog.New(slog.NewTextHandler(&serverLog, nil))
			})
			url := srv.ClientURL()
			ops := connect(t, url, nats.UserInfo("ops", "ops-example-password"), nats.CustomInboxPrefix(opsInbox))
			watch := &watcher{notify: make(chan struct{}, 1)}
			if _, err := ops.Subscribe("hb.events.>", watch.add); err != nil {
				t.Fatal(err)
			}
			if err := ops.Flush(); err != nil {
				t.Fatal(err)
			}

			mon := startProc(t, bin, nil, "monitor", "-s", url, "--user", "monitor1", "--password", "monitor1-example-password",
				"--inbox-prefix", monitorInbox, "--id", "monitor1", "--state-file", filepath.Join(dir, "peers.json"))
			natstest.Eventually(t, "the monitor says whether the crash fast path is on", func() bool {
				return strings.Contains(mon.stderr.String(), "crash fast path o")
			})
			n := startProc(t, bin, nil, "node", "-s", url, "--user", "node-a", "--password", "node-a-example-password",
				"--id", "node-a", "--interval", "250ms")
			watch.waitEvent(t, "node-a", monitor.StateAlive, monitor.ReasonFirstBeat)
			if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			watch.waitEvent(t, "node-a", monitor.StateDead, monitor.ReasonTimeout)

			log := mon.stderr.String()
			var said []string
			for _, line := range strings.Split(log, "\n") {
				if strings.Contains(line, "crash fast path") {
					said = append(said, line)
				}
			}
			if len(said) != 1 || !strings.Contains(said[0], `level=WARN msg="crash fast path off`) || !strings.Contains(said[0], c.missing) {
				t.Errorf("the monitor's word on the fast path is %q, want one warning naming %s", said, c.missing)
			}
			if strings.Contains(strings.ToLower(log), "violation") || strings.Contains(log, "NATS error") {
				t.Errorf("the monitor hit a permission violation:\n%s", log)
			}
			srvLog := serverLog.String()
			if n := strings.Count(srvLog, "Subscription Violation"); n != 0 {
				t.Errorf("the server refused %d subscriptions:\n%s", n, srvLog)
			}
			if n := strings.Count(srvLog, "Publish Violation"); n != c.refused || n != strings.Count(srvLog, `Publish Violation - Subject \"$SYS.REQ.USER.INFO\"`) {
				t.Errorf("the server refused %d publishes, want %d (the question whether it may subscribe):\n%s", n, c.refused, srvLog)
			}
		})
	}
}

// TestPermissionsAgreeWithServer: what wire.Permissions says a user may
// subscribe to and publish, which is how the monitor decides whether to
// subscribe to the advisories, is what a real server allows.
func TestPermissionsAgreeWithServer(t *testing.T) {
	lists := []wire.SubjectPermission{
		{},
		{Allow: []string{wire.DisconnectAdvisories}},
		{Allow: []string{">"}},
		{Allow: []string{"$SYS.>"}},
		{Allow: []string{"$SYS.ACCOUNT.*.*", "hb.*"}},
		{Allow: []string{"$SYS.ACCOUNT.HBMESH.DISCONNECT"}},
		{Allow: []string{"$SYS.ACCOUNT.*"}},
		{Allow: []string{">"}, Deny: []string{"$SYS.>"}},
		{Deny: []string{wire.DisconnectAdvisories}},
		{Deny: []string{"$SYS.ACCOUNT.HBMESH.DISCONNECT", "hb.*.probe"}},
		{Allow: []string{"hb.>", wire.UserInfoSubject}},
	}
	subjects := []string{wire.DisconnectAdvisories, wire.UserInfoSubject, "$SYS.ACCOUNT.HBMESH.DISCONNECT", "hb.>", "hb.x", "hb.x.probe"}
	quoted := func(l []string) string {
		q := make([]string, len(l))
		for i, s := range l {
			q[i] = strconv.Quote(s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	var conf strings.Builder
	conf.WriteString("authorization { users: [\n")
	for i, l := range lists {
		var sp []string
		if len(l.Allow) > 0 {
			sp = append(sp, "allow: "+quoted(l.Allow))
		}
		if len(l.Deny) > 0 {
			sp = append(sp, "deny: "+quoted(l.Deny))
		}
		m := strings.Join(sp, ", ")
		fmt.Fprintf(&conf, "  { user: u%d, password: p, permissions: { publish: { %s }, subscribe: { %s } } }\n", i, m, m)
	}
	conf.WriteString("] }\n")
	path := filepath.Join(t.TempDir(), "server.conf")
	if err := os.WriteFile(path, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	url := startServer(t, path).ClientURL()
	quiet := nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}) // LastError tells

	for i, l := range lists {
		p := &wire.Permissions{Publish: &l, Subscribe: &l}
		for _, s := range subjects {
			// One connection per question, so that its last error is
			// the server's answer to it.
			c := natstest.Connect(t, url, nats.UserInfo(fmt.Sprintf("u%d", i), "p"), quiet)
			if _, err := c.SubscribeSync(s); err != nil {
				t.Fatal(err)
			}
			if err := c.Flush(); err != nil {
				t.Fatal(err)
			}
			if server := c.LastError() == nil; server != p.MaySubscribe(s) {
				t.Errorf("allow %q deny %q: the server lets it subscribe to %q: %v, MaySubscribe: %v", l.Allow, l.Deny, s, server, !server)
			}
			if !strings.Contains(s, "*") && !strings.Contains(s, ">") {
				c := natstest.Connect(t, url, nats.UserInfo(fmt.Sprintf("u%d", i), "p"), quiet)
				if err := c.Publish(s, nil); err != nil {
					t.Fatal(err)
				}
				if err := c.Flush(); err != nil {
					t.Fatal(err)
				}
				if server := c.LastError() == nil; server != p.MayPublish(s) {
					t.Errorf("allow %q deny %q: the server lets it publish to %q: %v, MayPublish: %v", l.Allow, l.Deny, s, server, !server)
				}
			}
			c.Close()
		}
	}
}
