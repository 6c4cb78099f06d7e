package monitor_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/internal/faultproxy"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/internal/syncio"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/node"
	"github.com/hbmesh/hbmesh/wire"
)

// These tests give their nodes an interval of an hour, so the timeout
// path cannot convict anyone while they run: a dead verdict can only be
// the fast path's. They assert what happened, never how fast.

const slow = time.Hour

func meshAccount(c *embedded.Config) { c.MeshAccount = embedded.DefaultMeshAccount }

// fastMonitor runs a monitor with the fast path on nc, settled at once.
// The margin is generous: these tests are about the logic, and a loaded
// machine may take a while to reconnect a node.
func fastMonitor(t *testing.T, nc *nats.Conn) (*monitor.Monitor, *recorder) {
	t.Helper()
	return startMonitor(t, nc, func(c *monitor.Config) {
		c.FastPathSettle = time.Millisecond
		c.DisconnectMargin = 2 * time.Second
	})
}

// checkFastPath runs CheckFastPath with test connections to url.
func checkFastPath(t *testing.T, m *monitor.Monitor, url string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), natstest.Timeout)
	defer cancel()
	return m.CheckFastPath(ctx, func(name string) (*nats.Conn, error) {
		return nats.Connect(url, nats.Name(name), nats.NoReconnect())
	})
}

// namedNode runs node id beating every hour over its own connection to
// url, named as hbmesh names a node's connection, and returns the node
// and its connection.
func namedNode(t *testing.T, url, id string, opts ...nats.Option) (*node.Node, *nats.Conn) {
	t.Helper()
	return namedNodeEvery(t, url, id, slow, opts...)
}

// namedNodeEvery is namedNode beating every interval.
func namedNodeEvery(t *testing.T, url, id string, interval time.Duration, opts ...nats.Option) (*node.Node, *nats.Conn) {
	t.Helper()
	opts = append([]nats.Option{nats.ReconnectWait(50 * time.Millisecond), nats.MaxReconnects(-1)}, opts...)
	o := nats.GetDefaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			t.Fatal(err)
		}
	}
	o.Url = url
	window, _ := node.ReconnectWindow(&o)
	name, err := wire.NodeConn{Prefix: wire.DefaultPrefix, ID: id, Reconnect: window}.Name()
	if err != nil {
		t.Fatal(err)
	}
	nc := natstest.Connect(t, url, append(opts, nats.Name(name))...)
	cfg := node.DefaultConfig()
	cfg.ID, cfg.Interval = id, interval
	n, err := node.New(nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	run(t, n.Run)
	return n, nc
}

// settled waits until every check the monitor started has ended, and
// returns the stats then.
func settled(t *testing.T, m *monitor.Monitor) monitor.Stats {
	t.Helper()
	var st monitor.Stats
	natstest.Eventually(t, "every fast-path check ended", func() bool {
		st = m.Stats()
		return st.Checks["alive"]+st.Checks["dead"]+st.Checks["fallback"] == st.Advisories["checked"]
	})
	return st
}

func noDeath(t *testing.T, rec *recorder, id string) {
	t.Helper()
	if n := rec.count(id, monitor.StateDead); n != 0 {
		t.Fatalf("%s, alive, was declared dead %d times: %v", id, n, rec.all())
	}
}

// TestFastPathCrash: a node whose connection ends without a goodbye and
// does not come back is dead with reason disconnected, long before its
// hour-long timeout.
func TestFastPathCrash(t *testing.T) {
	srv := natstest.Start(t, meshAccount)
	m, rec := fastMonitor(t, natstest.Connect(t, srv.ClientURL()))
	if err := checkFastPath(t, m, srv.ClientURL()); err != nil {
		t.Fatalf("CheckFastPath: %v", err)
	}
	if st := m.Stats(); !st.FastPath || st.Advisories["self_check"] == 0 {
		t.Fatalf("after the check: FastPath %v, advisories %v", st.FastPath, st.Advisories)
	}
	_, nc := namedNode(t, srv.ClientURL(), "crash")
	rec.waitState(t, "crash", monitor.StateAlive)

	nc.Close() // the process is gone: no goodbye, no reconnect
	ev := rec.waitState(t, "crash", monitor.StateDead)
	if ev.Reason != monitor.ReasonDisconnected || ev.Prev != monitor.StateAlive {
		t.Fatalf("dead event %+v, want reason disconnected", ev)
	}
	if !strings.Contains(ev.String(), "disconnected") || !strings.Contains(string(ev.AppendJSON(nil, "")), `"reason":"disconnected"`) {
		t.Fatalf("the event does not say disconnected: %s / %s", ev, ev.AppendJSON(nil, ""))
	}
	st := settled(t, m)
	if st.Checks["dead"] != 1 || st.Checks["alive"] != 0 || st.Checks["fallback"] != 0 {
		t.Fatalf("checks %v", st.Checks)
	}
}

// TestFastPathReconnects: a live node whose connection is cut, or kicked
// by the server, reconnects within its window and is never convicted.
func TestFastPathReconnects(t *testing.T) {
	srv := natstest.Start(t, meshAccount)
	m, rec := fastMonitor(t, natstest.Connect(t, srv.ClientURL()))
	if err := checkFastPath(t, m, srv.ClientURL()); err != nil {
		t.Fatalf("CheckFastPath: %v", err)
	}
	px, err := faultproxy.New("127.0.0.1:0", strings.TrimPrefix(srv.ClientURL(), "nats://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	// The cut gives a read error, whose check waits the node's interval
	// too: a second, not an hour, so that it ends while the test runs.
	_, cut := namedNodeEvery(t, px.URL(), "cut", time.Second)
	_, kicked := namedNode(t, srv.ClientURL(), "kicked")
	rec.waitState(t, "cut", monitor.StateAlive)
	rec.waitState(t, "kicked", monitor.StateAlive)

	px.Cut()
	px.Heal()
	id, err := kicked.GetClientID()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.NATS().DisconnectClientByID(id); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, "both nodes reconnected", func() bool {
		return cut.Stats().Reconnects > 0 && kicked.Stats().Reconnects > 0 && cut.IsConnected() && kicked.IsConnected()
	})
	natstest.Eventually(t, "both advisories checked", func() bool { return m.Stats().Advisories["checked"] >= 2 })
	st := settled(t, m)
	noDeath(t, rec, "cut")
	noDeath(t, rec, "kicked")
	if st.Checks["alive"] < 2 {
		t.Fatalf("checks %v, want both ended alive", st.Checks)
	}
}

// unresponsiveServer listens on loopback and accepts connections but
// never answers, as a frozen nats-server does; a client dialling it waits
// out its connect timeout. It returns the server's URL.
func unresponsiveServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return "nats://" + ln.Addr().String()
}

// TestFastPathUnresponsiveServer is the bound docs/RELIABILITY.md states:
// a live node, kicked by its server, tries first another server of its
// list that accepts but never answers, and is back only after its
// connect timeout, outside its window. The fast path convicts it, and its
// next beat brings it back; a DisconnectMargin above the connect timeout
// keeps it alive.
func TestFastPathUnresponsiveServer(t *testing.T) {
	const connectTimeout = time.Second
	for _, tc := range []struct {
		name   string
		margin time.Duration
		dead   bool
	}{
		{"default margin", monitor.DefaultConfig().DisconnectMargin, true},
		{"margin above the connect timeout", 2 * connectTimeout, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := natstest.Start(t, meshAccount)
			m, rec := startMonitor(t, natstest.Connect(t, srv.ClientURL()), func(c *monitor.Config) {
				c.FastPathSettle, c.DisconnectMargin = time.Millisecond, tc.margin
			})
			if err := checkFastPath(t, m, srv.ClientURL()); err != nil {
				t.Fatal(err)
			}
			// A beat a second, so that the node beats as soon as it is
			// back, and no timeout can convict it meanwhile.
			_, nc := namedNodeEvery(t, srv.ClientURL()+","+unresponsiveServer(t), "victim", time.Second,
				nats.DontRandomize(), nats.Timeout(connectTimeout))
			alive := rec.waitState(t, "victim", monitor.StateAlive)
			id, err := nc.GetClientID()
			if err != nil {
				t.Fatal(err)
			}
			kicked := time.Now()
			if err := srv.NATS().DisconnectClientByID(id); err != nil {
				t.Fatal(err)
			}
			natstest.Eventually(t, "the node back", func() bool { return nc.Stats().Reconnects > 0 && nc.IsConnected() })
			back := time.Since(kicked)
			if back < connectTimeout {
				t.Fatalf("the node was back after %v, before its connect timeout", back)
			}
			st := settled(t, m)
			if !tc.dead {
				noDeath(t, rec, "victim")
				if st.Checks["alive"] != 1 {
					t.Fatalf("checks %v, want one ended alive", st.Checks)
				}
				return
			}
			dead := rec.waitState(t, "victim", monitor.StateDead)
			again := rec.wait(t, "victim alive again", func(e monitor.Event) bool {
				return e.ID == "victim" && e.State == monitor.StateAlive && e.Time.After(dead.Time)
			})
			if dead.Reason != monitor.ReasonDisconnected || again.Boot != alive.Boot {
				t.Fatalf("events %v, want dead (disconnected), then alive with the same boot", rec.all())
			}
			t.Logf("kicked node dead %v after the kick, back %v after it", dead.Time.Sub(kicked).Round(time.Millisecond), back.Round(time.Millisecond))
		})
	}
}

// TestFastPathCluster: the monitor on one server of a cluster convicts a
// crashed node of another, and a node kicked there, which reconnects to
// whichever server it tries first, or whose server shuts down under it,
// stays alive.
func TestFastPathCluster(t *testing.T) {
	servers := natstest.StartCluster(t, 3, meshAccount)
	m, rec := fastMonitor(t, natstest.Connect(t, servers[0].ClientURL()))
	// The test connections go to server 2: the advisory crosses a route.
	if err := checkFastPath(t, m, servers[2].ClientURL()); err != nil {
		t.Fatalf("CheckFastPath across the cluster: %v", err)
	}

	_, crash := namedNode(t, servers[2].ClientURL(), "crash")
	_, kicked := namedNode(t, servers[2].ClientURL(), "kicked")
	// The roamer beats often, so that its beats show it failed over; a
	// dead verdict by either path would be false.
	roamer, roamerNC := namedNodeEvery(t, servers[1].ClientURL(), "roamer", fast)
	for _, id := range []string{"crash", "kicked", "roamer"} {
		rec.waitState(t, id, monitor.StateAlive)
	}

	t.Run("crash on another server", func(t *testing.T) {
		crash.Close()
		ev := rec.waitState(t, "crash", monitor.StateDead)
		if ev.Reason != monitor.ReasonDisconnected {
			t.Fatalf("dead event %+v, want reason disconnected", ev)
		}
	})
	t.Run("kicked on another server", func(t *testing.T) {
		before := m.Stats().Advisories["checked"]
		id, err := kicked.GetClientID()
		if err != nil {
			t.Fatal(err)
		}
		if err := servers[2].NATS().DisconnectClientByID(id); err != nil {
			t.Fatal(err)
		}
		natstest.Eventually(t, "the kick checked", func() bool { return m.Stats().Advisories["checked"] > before })
		settled(t, m)
		noDeath(t, rec, "kicked")
	})
	t.Run("its server shut down", func(t *testing.T) {
		seq := roamer.Seq()
		servers[1].Shutdown()
		natstest.Eventually(t, "the roamer beating through another server", func() bool {
			p, ok := m.Peer("roamer")
			return ok && p.Seq > seq+3 && roamerNC.IsConnected()
		})
		st := settled(t, m)
		noDeath(t, rec, "roamer")
		t.Logf("advisories %v, checks %v", st.Advisories, st.Checks)
	})
}

// TestFastPathOffWithoutAccess: in nats-server's global account no
// advisory arrives; CheckFastPath says so and why, and the monitor works
// as without the fast path.
func TestFastPathOffWithoutAccess(t *testing.T) {
	srv := natstest.Start(t)
	m, rec := startMonitor(t, natstest.Connect(t, srv.ClientURL()), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*monitor.CheckFastPathEvery)
	defer cancel()
	err := m.CheckFastPath(ctx, func(name string) (*nats.Conn, error) {
		return nats.Connect(srv.ClientURL(), nats.Name(name), nats.NoReconnect())
	})
	if !errors.Is(err, monitor.ErrFastPathOff) || !strings.Contains(err.Error(), "global account") {
		t.Fatalf("CheckFastPath = %v, want ErrFastPathOff naming the global account", err)
	}
	if st := m.Stats(); st.FastPath {
		t.Fatal("Stats.FastPath true without advisories")
	}
	_, nc, _ := startNode(t, srv.ClientURL(), "plain", nil)
	rec.waitState(t, "plain", monitor.StateAlive)
	nc.Close()
	if ev := rec.waitState(t, "plain", monitor.StateDead); ev.Reason != monitor.ReasonTimeout {
		t.Fatalf("dead event %+v, want the timeout path's", ev)
	}

	off, _ := startMonitor(t, natstest.Connect(t, srv.ClientURL()), func(c *monitor.Config) { c.NoFastPath = true })
	if err := off.CheckFastPath(context.Background(), nil); !errors.Is(err, monitor.ErrFastPathOff) || !strings.Contains(err.Error(), "turned off") {
		t.Fatalf("CheckFastPath with NoFastPath = %v", err)
	}
}

// TestFastPathOffStaysOff: when CheckFastPath finds that no advisory
// arrives in time, the fast path stays off, as its error says: an
// advisory that could reach the monitor later, here a node's crash on the
// monitor's own server, turns nothing on, and the node is dead by the
// timeout path.
func TestFastPathOffStaysOff(t *testing.T) {
	srv := natstest.Start(t, meshAccount)
	elsewhere := natstest.Start(t, meshAccount) // its advisories never reach the monitor
	m, rec := startMonitor(t, natstest.Connect(t, srv.ClientURL()), func(c *monitor.Config) { c.FastPathSettle = time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 2*monitor.CheckFastPathEvery)
	defer cancel()
	err := m.CheckFastPath(ctx, func(name string) (*nats.Conn, error) {
		return nats.Connect(elsewhere.ClientURL(), nats.Name(name), nats.NoReconnect())
	})
	if !errors.Is(err, monitor.ErrFastPathOff) {
		t.Fatalf("CheckFastPath = %v, want ErrFastPathOff", err)
	}
	_, nc := namedNodeEvery(t, srv.ClientURL(), "crash", time.Second)
	rec.waitState(t, "crash", monitor.StateAlive)
	nc.Close()
	if ev := rec.waitState(t, "crash", monitor.StateDead); ev.Reason != monitor.ReasonTimeout {
		t.Fatalf("dead event %+v, want the timeout path's", ev)
	}
	st := m.Stats()
	var advisories uint64
	for _, n := range st.Advisories {
		advisories += n
	}
	if st.FastPath || st.JSON(nil).FastPath || advisories != 0 {
		t.Fatalf("after the fast path was reported off: FastPath %v, advisories %v", st.FastPath, st.Advisories)
	}
}

// TestFastPathOffWithoutHeaders: a server without headers cannot answer
// a probe with "no responders", so the fast path is off and says why,
// however the accounts are set up.
func TestFastPathOffWithoutHeaders(t *testing.T) {
	srv := natstest.Start(t, meshAccount, func(c *embedded.Config) {
		c.Options = func(o *server.Options) { o.NoHeaderSupport = true }
	})
	m, _ := startMonitor(t, natstest.Connect(t, srv.ClientURL()), nil)
	err := m.CheckFastPath(context.Background(), func(name string) (*nats.Conn, error) {
		return nats.Connect(srv.ClientURL(), nats.Name(name), nats.NoReconnect())
	})
	if !errors.Is(err, monitor.ErrFastPathOff) || !strings.Contains(err.Error(), "headers") {
		t.Fatalf("CheckFastPath = %v, want ErrFastPathOff naming headers", err)
	}
	if m.Stats().FastPath {
		t.Fatal("Stats.FastPath true on a server without headers")
	}
}

// permissionsConf puts two monitor users in a mesh account that imports
// its advisories: one that may not subscribe to them, one that may not
// ask the server what it may do; clients without credentials are nodes.
const permissionsConf = `
accounts {
  SYS { exports: [ { stream: "$SYS.ACCOUNT.*.DISCONNECT", account_token_position: 3 } ] }
  MESH {
    users: [
      { user: nosub, password: nosub, permissions: { subscribe: { deny: ["$SYS.ACCOUNT.*.DISCONNECT"] } } }
      { user: noinfo, password: noinfo, permissions: { publish: { allow: ["hb.>"] } } }
      { user: node, password: node }
    ]
    imports: [ { stream: { account: SYS, subject: "$SYS.ACCOUNT.MESH.DISCONNECT" } } ]
  }
}
system_account: SYS
no_auth_user: node
`

// TestFastPathOffWithoutPermission: a monitor whose user may not
// subscribe to the advisories, or may not ask whether it may, learns so
// before it subscribes: CheckFastPath says why at once, the monitor's
// connection hits no permission violation, the server logs no refused
// subscription, and a crashed node is dead by the timeout path.
func TestFastPathOffWithoutPermission(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "server.conf")
	if err := os.WriteFile(conf, []byte(permissionsConf), 0o600); err != nil {
		t.Fatal(err)
	}
	var serverLog syncio.Writer
	srv := natstest.Start(t, func(c *embedded.Config) {
		c.ConfigFile = conf
		c.Logger = slog.New(slog.NewTextHandler(&serverLog, nil))
	})
	for _, c := range []struct {
		user, why      string
		userInfoDenied bool
	}{
		{"nosub", `user nosub of account MESH may not subscribe to "$SYS.ACCOUNT.*.DISCONNECT"`, false},
		{"noinfo", `the monitor's user may not publish "$SYS.REQ.USER.INFO"`, true},
	} {
		t.Run(c.user, func(t *testing.T) {
			login := nats.UserInfo(c.user, c.user)
			var errs syncio.Writer
			nc := natstest.Connect(t, srv.ClientURL(), login, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				fmt.Fprintln(&errs, err)
			}))
			m, rec := startMonitor(t, nc, nil)
			ctx, cancel := context.WithTimeout(context.Background(), natstest.Timeout)
			defer cancel()
			err := m.CheckFastPath(ctx, func(name string) (*nats.Conn, error) {
				return nats.Connect(srv.ClientURL(), login, nats.Name(name), nats.NoReconnect(),
					nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
			})
			if !errors.Is(err, monitor.ErrFastPathOff) || !strings.Contains(err.Error(), c.why) || ctx.Err() != nil {
				t.Fatalf("CheckFastPath = %v, want at once ErrFastPathOff saying %s", err, c.why)
			}

			_, node, _ := startNode(t, srv.ClientURL(), "plain-"+c.user, func(cfg *node.Config) { cfg.Interval = 100 * time.Millisecond })
			rec.waitState(t, "plain-"+c.user, monitor.StateAlive)
			node.Close()
			if ev := rec.waitState(t, "plain-"+c.user, monitor.StateDead); ev.Reason != monitor.ReasonTimeout {
				t.Fatalf("dead event %+v, want the timeout path's", ev)
			}
			if st := m.Stats(); st.FastPath || st.Advisories["checked"]+st.Advisories["self_check"] != 0 {
				t.Fatalf("fast path %v, advisories %v: the monitor took advisories", st.FastPath, st.Advisories)
			}
			if e := errs.String(); e != "" {
				t.Fatalf("the monitor's connection hit:\n%s", e)
			}
		})
	}
	log := serverLog.String()
	if n := strings.Count(log, "Subscription Violation"); n != 0 {
		t.Errorf("the server refused %d subscriptions:\n%s", n, log)
	}
	// Asking is the one way to learn: noinfo's question is refused, once.
	if n := strings.Count(log, "Publish Violation"); n != 1 || strings.Count(log, `Publish Violation - Subject \"$SYS.REQ.USER.INFO\"`) != 1 {
		t.Errorf("the server refused %d publishes, want the one question of noinfo:\n%s", n, log)
	}
}
