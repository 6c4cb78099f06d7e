package sectest_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/hbmesh/hbmesh/embedded"
	"github.com/hbmesh/hbmesh/internal/natstest"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/node"
	"github.com/hbmesh/hbmesh/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	// The templates under test, used as they are.
	usersConf = "../../deploy/auth/users.conf"
	nkeysConf = "../../deploy/auth/nkeys.conf"

	// Inbox prefixes the templates grant to the monitor, notify and ops
	// users.
	monitorInbox = "_INBOX_monitor1"
	notifyInbox  = "_INBOX_notify1"
	opsInbox     = "_INBOX_ops"

	interval = node.MinInterval // beat interval of every test node
	deadline = 15 * time.Second // generous bound for anything to happen
)

var subj = wire.MustSubjects(wire.DefaultPrefix)

// form is one way of authenticating against one template.
type form struct {
	name  string
	conf  string
	login func(user string) nats.Option
}

// forms are the two authorization templates and how their users log in.
func forms() []form {
	return []form{
		{"users", usersConf, func(user string) nats.Option {
			// The published example password of each template user.
			return nats.UserInfo(user, user+"-example-password")
		}},
		{"nkeys", nkeysConf, func(user string) nats.Option {
			return nkeyFile(filepath.Join("testdata", user+".nk"))
		}},
	}
}

// nkeyFile wraps nats.NkeyOptionFromSeed, which can only fail on a bad file.
func nkeyFile(path string) nats.Option {
	return func(o *nats.Options) error {
		opt, err := nats.NkeyOptionFromSeed(path)
		if err != nil {
			return err
		}
		return opt(o)
	}
}

// startServer starts a server configured by the template conf, on a
// random port, with mods applied after it.
func startServer(t *testing.T, conf string, mods ...func(*embedded.Config)) *embedded.Server {
	t.Helper()
	return natstest.Start(t, append([]func(*embedded.Config){func(c *embedded.Config) {
		c.ConfigFile = conf
	}}, mods...)...)
}

// asyncErrs collects the errors the server reports asynchronously on one
// connection (permission violations, mostly).
type asyncErrs struct {
	mu     sync.Mutex
	errs   []error
	notify chan struct{}
}

func (a *asyncErrs) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	a.mu.Lock()
	a.errs = append(a.errs, err)
	a.mu.Unlock()
	select {
	case a.notify <- struct{}{}:
	default:
	}
}

func (a *asyncErrs) list() []error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]error(nil), a.errs...)
}

// take waits for an error containing text and removes it from the list.
func (a *asyncErrs) take(t *testing.T, text string) error {
	t.Helper()
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	for {
		a.mu.Lock()
		for i, err := range a.errs {
			if strings.Contains(err.Error(), text) {
				a.errs = append(a.errs[:i], a.errs[i+1:]...)
				a.mu.Unlock()
				return err
			}
		}
		a.mu.Unlock()
		select {
		case <-a.notify:
		case <-timer.C:
			t.Fatalf("no async error containing %q within %v; got %v", text, deadline, a.list())
		}
	}
}

// client is a connection with its async errors.
type client struct {
	*nats.Conn
	errs *asyncErrs
}

// connect connects to url and fails the test at its end if the server
// reported an error on the connection that the test did not take: a
// legitimate client must never hit a permission violation.
func connect(t *testing.T, url string, opts ...nats.Option) client {
	t.Helper()
	a := &asyncErrs{notify: make(chan struct{}, 1)}
	// bcrypt at the templates' cost 11 can take seconds under -race on a
	// busy machine, beyond nats.go's 2s default.
	all := append([]nats.Option{nats.Timeout(deadline)}, opts...)
	nc := natstest.Connect(t, url, append(all, nats.ErrorHandler(a.handler))...)
	t.Cleanup(func() {
		_ = nc.Flush() // let the server report anything still in flight
		if errs := a.list(); len(errs) > 0 {
			t.Errorf("unexpected async errors on %q: %v", nc.Opts.Name, errs)
		}
	})
	return client{Conn: nc, errs: a}
}

// recorder collects a monitor's events and lets a test wait for one.
type recorder struct {
	mu     sync.Mutex
	events []monitor.Event
	notify chan struct{}
}

func (r *recorder) add(e monitor.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func (r *recorder) all() []monitor.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]monitor.Event(nil), r.events...)
}

// waitFor waits for an event of peer id into st with one of reasons (any
// reason if none are given), at or after index from, and returns its index.
func (r *recorder) waitFor(t *testing.T, from int, id string, st monitor.State, reasons ...monitor.Reason) int {
	t.Helper()
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	for {
		evs := r.all()
		for i := from; i < len(evs); i++ {
			e := evs[i]
			if e.ID == id && e.State == st && (len(reasons) == 0 || slices.Contains(reasons, e.Reason)) {
				return i
			}
		}
		select {
		case <-r.notify:
		case <-timer.C:
			t.Fatalf("no %s %s event (reasons %v) within %v; events: %v", id, st, reasons, deadline, evs)
		}
	}
}

// startMonitor runs a real monitor on nc until the test ends.
func startMonitor(t *testing.T, nc *nats.Conn) (*monitor.Monitor, *recorder) {
	t.Helper()
	rec := &recorder{notify: make(chan struct{}, 1)}
	cfg := monitor.DefaultConfig()
	cfg.ID = "monitor1"
	cfg.OnEvent = rec.add
	cfg.SelfCheckInterval = 50 * time.Millisecond
	m, err := monitor.New(nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	run(t, "monitor", m.Run, monitor.ErrClosed)
	natstest.Eventually(t, "monitor ready", func() bool { return m.Ready() == nil })
	// The server has the monitor's subscriptions once it answers a PING.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return m, rec
}

// startNode runs a real node with id on nc until the test ends. drop, if
// not nil, withholds beats while it is true.
func startNode(t *testing.T, nc *nats.Conn, id string, drop func() bool) *node.Node {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.ID, cfg.Interval, cfg.Jitter = id, interval, 0
	if drop != nil {
		cfg.DropBeat = func(uint64) bool { return drop() }
	}
	n, err := node.New(nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	run(t, "node "+id, n.Run, node.ErrConnClosed)
	return n
}

// run runs fn until the test ends, then cancels it, waits for it and
// checks it returned nil or ok.
func run(t *testing.T, what string, fn func(context.Context) error, ok error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, ok) {
				t.Errorf("%s: Run returned %v", what, err)
			}
		case <-time.After(deadline):
			t.Errorf("%s: Run did not return within %v of cancel", what, deadline)
		}
	})
}

// forgedBeat is a well-formed beat claiming to come from id.
func forgedBeat(id string) []byte {
	return wire.AppendBeat(nil, &wire.Beat{
		V: wire.Version, ID: id, Host: "forger", PID: 1, Boot: "0123456789abcdef",
		Seq: 1, TS: time.Now().UTC(), IntervalMS: interval.Milliseconds(),
		Status: wire.StatusAlive, Version: "dev",
	})
}

// violation is the text nats-server sends for a refused publish or
// subscription.
func violation(op, subject string) string {
	if op == "sub" {
		return fmt.Sprintf("Permissions Violation for Subscription to %q", subject)
	}
	return fmt.Sprintf("Permissions Violation for Publish to %q", subject)
}
