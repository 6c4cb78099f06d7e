package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/node"
	"github.com/hbmesh/hbmesh/wire"
)

// The crash fast path's wiring: the name of a node's connection, and the
// monitor's one report, at start, of whether the fast path is on.

// nodeConnName returns the name of node id's connection dialled with
// these flags: the node, and the reconnect window of exactly the options
// dial uses (node.ReconnectWindow), so that monitors can take the crash
// fast path for it. node.New checks the name against the connection.
func (c *connFlags) nodeConnName(prefix, id string) (string, error) {
	opts, err := c.options("", slog.New(slog.DiscardHandler), new(serverURL), func() bool { return true }, func(*nats.Conn, error) {})
	if err != nil {
		return "", err
	}
	o := nats.GetDefaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return "", err
		}
	}
	o.Url = c.Server
	window, ok := node.ReconnectWindow(&o)
	if !ok {
		return "", errors.New("the reconnect window of a custom reconnect delay cannot be told")
	}
	return wire.NodeConn{Prefix: prefix, ID: id, Reconnect: window}.Name()
}

// dialCheck returns the dial function of monitor.CheckFastPath: a
// connection to url (the monitor's own server) with these flags'
// credentials, which never reconnects and whose end and errors are logged
// at debug level only: CheckFastPath reports what they mean (a refused
// $SYS.REQ.USER.INFO is how it learns that the monitor may not ask).
// extra options come last (nats.InProcessServer for the demo).
func (c *connFlags) dialCheck(url string, log *slog.Logger, extra ...nats.Option) func(name string) (*nats.Conn, error) {
	return func(name string) (*nats.Conn, error) {
		opts, err := c.options(name, log, new(serverURL), func() bool { return true }, func(*nats.Conn, error) {})
		if err != nil {
			return nil, err
		}
		quiet := nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Debug("NATS error on the crash fast path's test connection", "err", err)
		})
		return nats.Connect(url, append(append(opts, nats.NoReconnect(), quiet), extra...)...)
	}
}

// fastPathCheckTimeout bounds how long a monitor waits, at start, for the
// advisory of its test connection, which takes milliseconds, beyond its
// FastPathSettle.
const fastPathCheckTimeout = 2 * time.Second

// reportFastPath says once, when m is ready, whether the crash fast path
// is on, and if not why: a warning, since dead verdicts then take the
// timeout path. It returns when it has said so or ctx is done.
func reportFastPath(ctx context.Context, m *monitor.Monitor, settle time.Duration, dial func(string) (*nats.Conn, error), log *slog.Logger) {
	if m.WaitReady(ctx) != nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, settle+fastPathCheckTimeout)
	defer cancel()
	err := m.CheckFastPath(cctx, dial)
	switch {
	case err == nil:
		log.Info("crash fast path on: DISCONNECT advisories arrive")
	case ctx.Err() != nil:
	default:
		log.Warn("crash fast path off: a crashed node is reported dead by the timeout path", "why", strings.TrimPrefix(err.Error(), monitor.ErrFastPathOff.Error()+": "))
	}
}
