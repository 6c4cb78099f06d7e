package sectest_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/internal/natstest"
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
