package sectest_test

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nkeys"

	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/monitor"
)

// TestNodeCannotImpersonate: node-a publishing a well-formed beat as
// node-b is refused by the server, told so on its own connection, and the
// monitor never hears of node-b.
func TestNodeCannotImpersonate(t *testing.T) {
	for _, f := range forms() {
		t.Run(f.name, func(t *testing.T) {
			s := startServer(t, f.conf)
			mon := connect(t, s.ClientURL(), f.login("monitor1"), nats.CustomInboxPrefix(monitorInbox))
			m, rec := startMonitor(t, mon.Conn)
			a := connect(t, s.ClientURL(), f.login("node-a"))
			na := startNode(t, a.Conn, "node-a", nil)
			rec.waitFor(t, 0, "node-a", monitor.StateAlive)

			if err := a.Publish(subj.Beat("node-b"), forgedBeat("node-b")); err != nil {
				t.Fatalf("publish forged beat: %v", err)
			}
			// Every beat with a later seq leaves node-a's connection after
			// the forgery, so once the monitor has one, the forgery (had the
			// server let it through) would have reached the monitor first.
			forgedAt := na.Seq()
			err := a.errs.take(t, violation("pub", "hb.node-b"))
			if !errors.Is(err, nats.ErrPermissionViolation) {
				t.Errorf("async error %v does not wrap nats.ErrPermissionViolation", err)
			}
			natstest.Eventually(t, "monitor hears node-a after the forgery", func() bool {
				p, ok := m.Peer("node-a")
				return ok && p.Seq > forgedAt
			})
			if p, ok := m.Peer("node-b"); ok {
				t.Errorf("monitor knows node-b: %+v", p)
			}
			for _, e := range rec.all() {
				if e.ID != "node-a" {
					t.Errorf("unexpected event %v", &e)
				}
			}
			for reason, n := range m.Stats().Rejected {
				if n != 0 {
					t.Errorf("monitor rejected %d beats (%s): the forgery reached it", n, reason)
				}
			}
			if a.IsClosed() || !a.IsConnected() {
				t.Errorf("node-a's connection did not survive the violation: %v", a.Status())
			}
		})
	}
}

// TestMonitorDetectsWithAuth: under the templates a monitor still sees
// nodes come alive, probes them and convicts them.
func TestMonitorDetectsWithAuth(t *testing.T) {
	for _, f := range forms() {
		t.Run(f.name, func(t *testing.T) {
			s := startServer(t, f.conf)
			mon := connect(t, s.ClientURL(), f.login("monitor1"), nats.CustomInboxPrefix(monitorInbox))
			m, rec := startMonitor(t, mon.Conn)

			var dropA dropSwitch
			a := connect(t, s.ClientURL(), f.login("node-a"))
			startNode(t, a.Conn, "node-a", dropA.on)
			b := connect(t, s.ClientURL(), f.login("node-b"))
			startNode(t, b.Conn, "node-b", nil)
			rec.waitFor(t, 0, "node-a", monitor.StateAlive, monitor.ReasonFirstBeat)
			rec.waitFor(t, 0, "node-b", monitor.StateAlive, monitor.ReasonFirstBeat)

			// Beats lost, process alive: the probe, sent through the
			// monitor's own inbox and answered under allow_responses,
			// keeps node-a alive.
			dropA.set(true)
			i := rec.waitFor(t, 0, "node-a", monitor.StateSuspect, monitor.ReasonSilent)
			rec.waitFor(t, i, "node-a", monitor.StateAlive, monitor.ReasonProbeAnswered)
			if st := m.Stats(); st.ProbesAnswered == 0 {
				t.Fatalf("no probe answered: %+v", st)
			}

			// Cut node-a off: no beats, no probe answers, dead.
			a.Close()
			i = len(rec.all())
			rec.waitFor(t, i, "node-a", monitor.StateDead, monitor.ReasonTimeout)

			for _, e := range rec.all() {
				if e.ID == "node-b" && e.State != monitor.StateAlive {
					t.Errorf("node-b moved: %v", &e)
				}
			}
			if p, ok := m.Peer("node-b"); !ok || p.State != monitor.StateAlive {
				t.Errorf("node-b: %+v, %v; want alive", p, ok)
			}
		})
	}
}

// TestUnauthenticatedRefused: no credentials, or wrong ones, no connection.
func TestUnauthenticatedRefused(t *testing.T) {
	stranger, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	strangerPub, err := stranger.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		form, name string
		opts       []nats.Option
		want       error
	}{
		{"users", "anonymous", nil, nats.ErrAuthorization},
		{"users", "wrong password", []nats.Option{nats.UserInfo("node-a", "WRONG")}, nats.ErrAuthorization},
		{"users", "another node's password", []nats.Option{nats.UserInfo("node-b", "node-a-example-password")}, nats.ErrAuthorization},
		{"users", "unknown user", []nats.Option{nats.UserInfo("mallory", "mallory-example-password")}, nats.ErrAuthorization},
		// The client itself gives up: the server offers no nkey challenge.
		{"users", "nkey", []nats.Option{nkeyFile("testdata/node-a.nk")}, nats.ErrNkeysNotSupported},
		{"nkeys", "anonymous", nil, nats.ErrAuthorization},
		{"nkeys", "unknown key", []nats.Option{nats.Nkey(strangerPub, stranger.Sign)}, nats.ErrAuthorization},
		{"nkeys", "password", []nats.Option{nats.UserInfo("node-a", "node-a-example-password")}, nats.ErrAuthorization},
	}
	servers := map[string]string{}
	for _, f := range forms() {
		servers[f.name] = startServer(t, f.conf).ClientURL()
	}
	for _, c := range cases {
		t.Run(c.form+"/"+c.name, func(t *testing.T) {
			nc, err := nats.Connect(servers[c.form], append(c.opts, nats.Timeout(deadline))...)
			if err == nil {
				nc.Close()
				t.Fatal("connected")
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("connect: %v, want %v", err, c.want)
			}
		})
	}
}

// TestPermissions walks each template user through what it may and may
// not do.
func TestPermissions(t *testing.T) {
	type row struct {
		op, subject string // op is "pub" or "sub"
		allowed     bool
	}
	users := []struct {
		user  string
		inbox string
		rows  []row
	}{
		{"node-a", "", []row{
			{"pub", "hb.node-a", true},
			{"sub", "hb.node-a.probe", true},
			{"pub", "hb.node-b", false},
			{"pub", "hb.node-b.probe", false},
			{"pub", "hb.node-a.probe", false},
			{"pub", "hb.events.dead.node-b", false},
			{"pub", "hb.monitor.v1.status", false},
			{"pub", "$SRV.PING", false},
			{"pub", "_INBOX_monitor1.x.node-b", false},
			{"sub", "hb.*", false},
			{"sub", "hb.>", false},
			{"sub", "hb.node-b.probe", false},
			{"sub", "hb.*.probe", false},
			{"sub", "_INBOX.>", false},
			{"sub", "_INBOX_monitor1.>", false},
		}},
		{"monitor1", monitorInbox, []row{
			{"pub", "hb.node-a.probe", true},
			{"pub", "hb.events.dead.node-a", true},
			{"sub", "hb.*", true},
			{"sub", "hb.monitor.v1.status", true},
			{"sub", "$SRV.PING", true},
			{"sub", "_INBOX_monitor1.>", true},
			{"pub", "hb.node-a", false},
			{"pub", "hb.monitor1", false},
			{"pub", "hb.events", false},
			{"pub", "$SRV.PING", false},
			{"pub", "$JS.API.STREAM.DELETE.HBEVENTS", false},
			{"pub", "$JS.API.STREAM.PURGE.HBEVENTS", false},
			{"sub", "hb.node-a.probe", false},
			{"sub", "hb.*.probe", false},
			{"sub", "_INBOX.>", false},
			{"sub", "_INBOX_ops.>", false},
		}},
		{"notify1", notifyInbox, []row{
			{"pub", "$JS.API.STREAM.INFO.HBEVENTS", true},
			{"pub", "$JS.API.DIRECT.GET.HBEVENTS", true},
			{"pub", "$JS.API.CONSUMER.MSG.NEXT.HBEVENTS.hbmesh_notify_exec", true},
			{"sub", "_INBOX_notify1.>", true},
			{"pub", "hb.node-a", false}, // a beat
			{"pub", "hb.node-a.probe", false},
			{"pub", "hb.events.dead.node-a", false},
			{"pub", "hb.monitor.v1.status", false},
			{"pub", "$SRV.PING", false},
			{"pub", "$JS.API.STREAM.CREATE.HBEVENTS", false},
			{"pub", "$JS.API.STREAM.DELETE.HBEVENTS", false},
			{"pub", "$JS.API.STREAM.PURGE.HBEVENTS", false},
			{"pub", "$JS.API.STREAM.MSG.DELETE.HBEVENTS", false},
			{"pub", "$JS.API.STREAM.LIST", false},
			{"pub", "$JS.API.CONSUMER.CREATE.HBEVENTS.other.hb.events.>", false},
			{"pub", "$JS.API.CONSUMER.MSG.NEXT.HBEVENTS.other", false},
			{"pub", "$JS.API.CONSUMER.DELETE.HBEVENTS.hbmesh_notify_exec", false},
			{"pub", "$JS.ACK.HBEVENTS.other.1.1.1.1.0", false},
			{"pub", "$JS.API.DIRECT.GET.KV_hbmesh_hb_peers.x", false},
			{"pub", "$KV.hbmesh_hb_peers.x", false},
			{"pub", "_INBOX_monitor1.x.node-a", false},
			{"sub", "hb.>", false},
			{"sub", "hb.events.>", false},
			{"sub", "_INBOX.>", false},
			{"sub", "_INBOX_monitor1.>", false},
		}},
		{"ops", opsInbox, []row{
			{"sub", "hb.>", true},
			{"sub", "_INBOX_ops.>", true},
			{"pub", "hb.monitor.v1.status", true},
			{"pub", "$SRV.PING", true},
			{"pub", "$SRV.INFO.hbmesh", true},
			{"pub", "$SRV.STATS.hbmesh.abc", true},
			{"pub", "hb.x", false},
			{"pub", "hb.node-a", false},
			{"pub", "hb.node-a.probe", false},
			{"pub", "hb.events.dead.node-a", false},
			{"pub", "$JS.API.STREAM.CREATE.HBEVENTS", false},
			{"pub", "_INBOX_monitor1.x.node-a", false},
			{"sub", "_INBOX.>", false},
			{"sub", "_INBOX_monitor1.>", false},
			{"sub", "$SRV.>", false},
		}},
	}
	for _, f := range forms() {
		t.Run(f.name, func(t *testing.T) {
			s := startServer(t, f.conf)
			for _, u := range users {
				t.Run(u.user, func(t *testing.T) {
					opts := []nats.Option{f.login(u.user)}
					if u.inbox != "" {
						opts = append(opts, nats.CustomInboxPrefix(u.inbox))
					}
					c := connect(t, s.ClientURL(), opts...)
					for _, r := range u.rows {
						t.Run(r.op+" "+r.subject, func(t *testing.T) {
							do(t, c, r.op, r.subject)
							if !r.allowed {
								c.errs.take(t, violation(r.op, r.subject))
							}
						})
					}
					// Errors are delivered in order: once the sentinel's
					// arrives, any error for an allowed row would be there.
					do(t, c, "pub", "sectest.sentinel")
					c.errs.take(t, violation("pub", "sectest.sentinel"))
				})
			}
		})
	}
}

// TestMonitorCannotOverhearProbes: a monitor may subscribe to every beat
// but must never receive a node's probes (which it could then answer under
// allow_responses, vouching for a dead node). nats-server accepts its
// subscription to hb.> (the allow hb.* matches it), so what is checked is
// delivery: the template's deny keeps the probes out.
func TestMonitorCannotOverhearProbes(t *testing.T) {
	for _, f := range forms() {
		t.Run(f.name, func(t *testing.T) {
			s := startServer(t, f.conf)
			spy := connect(t, s.ClientURL(), f.login("monitor1"), nats.CustomInboxPrefix(monitorInbox))
			var subs []*nats.Subscription
			for _, wild := range []string{"hb.>", subj.Beats()} {
				sub, err := spy.SubscribeSync(wild)
				if err != nil {
					t.Fatal(err)
				}
				subs = append(subs, sub)
			}
			if err := spy.Flush(); err != nil {
				t.Fatal(err)
			}
			prober := connect(t, s.ClientURL(), f.login("monitor1"), nats.CustomInboxPrefix(monitorInbox))
			if err := prober.PublishRequest(subj.Probe("node-a"), monitorInbox+".x.node-a", nil); err != nil {
				t.Fatal(err)
			}
			if err := prober.Flush(); err != nil {
				t.Fatal(err)
			}
			// The server has routed the probe; a beat sent now reaches the
			// spy after the probe would have.
			a := connect(t, s.ClientURL(), f.login("node-a"))
			if err := a.Publish(subj.Beat("node-a"), forgedBeat("node-a")); err != nil {
				t.Fatal(err)
			}
			for _, sub := range subs {
				msg, err := sub.NextMsg(deadline)
				if err != nil {
					t.Fatalf("%s: %v", sub.Subject, err)
				}
				if msg.Subject != subj.Beat("node-a") {
					t.Fatalf("%s: got %q, want only the beat %q", sub.Subject, msg.Subject, subj.Beat("node-a"))
				}
			}
		})
	}
}

// do publishes to or subscribes to subject on c and flushes.
func do(t *testing.T, c client, op, subject string) {
	t.Helper()
	var err error
	switch op {
	case "pub":
		err = c.Publish(subject, []byte("x"))
	case "sub":
		var sub *nats.Subscription
		if sub, err = c.SubscribeSync(subject); err == nil {
			t.Cleanup(func() { _ = sub.Unsubscribe() })
		}
	default:
		t.Fatalf("unknown op %q", op)
	}
	if err != nil {
		t.Fatalf("%s %q: %v", op, subject, err)
	}
	if err := c.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// TestOpsReadOnly: ops sees the traffic and can ask the monitor and micro
// discovery, but cannot beat, probe, or answer a probe for a node.
func TestOpsReadOnly(t *testing.T) {
	for _, f := range forms() {
		t.Run(f.name, func(t *testing.T) {
			s := startServer(t, f.conf)
			mon := connect(t, s.ClientURL(), f.login("monitor1"), nats.CustomInboxPrefix(monitorInbox))
			// A stand-in for the monitor's control API, as a NATS micro
			// service on its control subject.
			svc, err := micro.AddService(mon.Conn, micro.Config{
				Name: "hbmesh-monitor", Version: "0.0.1",
				Endpoint: &micro.EndpointConfig{
					Subject: subj.Control("status"),
					Handler: micro.HandlerFunc(func(r micro.Request) { _ = r.Respond([]byte(`{"ok":true}`)) }),
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = svc.Stop() })

			ops := connect(t, s.ClientURL(), f.login("ops"), nats.CustomInboxPrefix(opsInbox))
			watch, err := ops.SubscribeSync(subj.All())
			if err != nil {
				t.Fatal(err)
			}
			if err := ops.Flush(); err != nil {
				t.Fatal(err)
			}

			// Read: a node's beats.
			a := connect(t, s.ClientURL(), f.login("node-a"))
			startNode(t, a.Conn, "node-a", nil)
			msg, err := watch.NextMsg(deadline)
			if err != nil {
				t.Fatalf("ops saw no beat: %v", err)
			}
			if msg.Subject != subj.Beat("node-a") {
				t.Fatalf("ops saw %q first, want %q", msg.Subject, subj.Beat("node-a"))
			}

			// Ask: hbmesh status and nats micro ls.
			if r, err := ops.Request(subj.Control("status"), nil, deadline); err != nil || string(r.Data) != `{"ok":true}` {
				t.Fatalf("status request: %v, %v", r, err)
			}
			if r, err := ops.Request("$SRV.PING", nil, deadline); err != nil {
				t.Fatalf("$SRV.PING: %v", err)
			} else if r.Header.Get("Status") != "" || len(r.Data) == 0 {
				t.Fatalf("$SRV.PING answer: %q %v", r.Data, r.Header)
			}

			// Not touch: a beat of its own, a forged beat, a probe.
			for _, s := range []string{"hb.x", subj.Beat("node-a"), subj.Probe("node-a")} {
				if err := ops.Publish(s, forgedBeat("node-a")); err != nil {
					t.Fatal(err)
				}
				ops.errs.take(t, violation("pub", s))
			}

			// Nor answer a probe it overhears: the answer would go to the
			// monitor's inbox, where ops may not publish.
			reply := monitorInbox + ".probe-test.node-a"
			if err := mon.PublishRequest(subj.Probe("node-a"), reply, nil); err != nil {
				t.Fatal(err)
			}
			for {
				msg, err := watch.NextMsg(deadline)
				if err != nil {
					t.Fatalf("ops did not overhear the probe: %v", err)
				}
				if msg.Subject == subj.Probe("node-a") && msg.Reply == reply {
					if err := msg.Respond(forgedBeat("node-a")); err != nil {
						t.Fatal(err)
					}
					break
				}
			}
			ops.errs.take(t, violation("pub", reply))
		})
	}
}

// dropSwitch withholds a node's beats while it is on.
type dropSwitch struct{ v atomic.Bool }

func (d *dropSwitch) set(on bool) { d.v.Store(on) }
func (d *dropSwitch) on() bool    { return d.v.Load() }
