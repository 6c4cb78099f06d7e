package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// defaultServer is the NATS URL used when neither --server nor $NATS_URL
// is given.
const defaultServer = "nats://127.0.0.1:4222"

// connFlags are the connection flags, named exactly like the nats CLI's
// (natscli v0.5.0) so the two tools share muscle memory and environment.
type connFlags struct {
	server   string
	user     string
	password string
	token    string
	creds    string
	nkey     string
	tlsCert  string
	tlsKey   string
	tlsCA    string
	timeout  time.Duration
	// inboxPrefix replaces _INBOX for this connection's reply subjects, so
	// a server's permissions can give each client its own inbox space.
	inboxPrefix string
	// context names a nats CLI context whose settings apply under the
	// environment and the flags.
	context string
	f       *flags // the flags these were registered on
	e       *env   // the environment they were validated in
}

// register adds the connection flags to f. timeoutUsage describes what
// --timeout bounds for this command (the nats CLI uses one --timeout for
// connecting and for waiting on responses, and so do we); defTimeout is its
// default.
func (c *connFlags) register(f *flags, defTimeout time.Duration, timeoutUsage string) {
	c.timeout = defTimeout
	c.f = f
	f.section("Connection flags")
	f.String(&c.context, "context", "", "", "nats CLI context `NAME` (or path to its JSON file) to take settings from;\nenvironment variables and flags override it")
	f.Env("context", "NATS_CONTEXT")
	f.String(&c.server, "server", "s", defaultServer, "NATS server `URL`s, comma separated")
	f.Env("server", "NATS_URL")
	f.String(&c.user, "user", "", "", "connect as `USER` (with --password); --user, --token, --creds and --nkey\nare exclusive")
	f.Env("user", "NATS_USER")
	f.String(&c.password, "password", "", "", "`PASSWORD` of --user")
	f.Env("password", "NATS_PASSWORD")
	f.String(&c.token, "token", "", "", "authentication `TOKEN`")
	f.Env("token", "NATS_TOKEN")
	f.String(&c.creds, "creds", "", "", "user credentials `FILE`")
	f.Env("creds", "NATS_CREDS")
	f.String(&c.nkey, "nkey", "", "", "user NKEY seed `FILE`")
	f.Env("nkey", "NATS_NKEY")
	f.String(&c.tlsCert, "tlscert", "", "", "TLS client certificate `FILE`")
	f.Env("tlscert", "NATS_CERT")
	f.String(&c.tlsKey, "tlskey", "", "", "TLS private key `FILE`")
	f.Env("tlskey", "NATS_KEY")
	f.String(&c.tlsCA, "tlsca", "", "", "TLS certificate authority chain `FILE`")
	f.Env("tlsca", "NATS_CA")
	f.String(&c.inboxPrefix, "inbox-prefix", "", "", "custom inbox `PREFIX` for replies (default _INBOX); must match the\nserver's permissions, e.g. _INBOX_monitor1 with deploy/auth")
	f.Var(durationFlag{&c.timeout, time.Millisecond, time.Hour}, "timeout", "", timeoutUsage)
	f.Env("timeout", "NATS_TIMEOUT")
	f.section("Flags")
}

// validate applies --context and checks combinations the flag types
// cannot. Call it after parsing.
func (c *connFlags) validate(e *env) error {
	c.e = e
	if err := c.checkAuth(); err != nil {
		return err
	}
	if c.f != nil {
		if err := c.applyContext(e, c.f); err != nil {
			return usagef("%v", err)
		}
	}
	if c.password != "" && c.user == "" {
		return usagef("%s needs --user (or $NATS_USER)", c.source("password"))
	}
	if p := c.inboxPrefix; p != "" {
		if strings.ContainsAny(p, "*> \t\r\n") || strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".") || strings.Contains(p, "..") {
			return usagef("invalid value %q for flag --inbox-prefix: want subject tokens without wildcards", p)
		}
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return usagef("--tlscert and --tlskey must be given together")
	}
	for _, fl := range []struct{ long, path string }{
		{"creds", c.creds}, {"nkey", c.nkey}, {"tlscert", c.tlsCert}, {"tlskey", c.tlsKey}, {"tlsca", c.tlsCA},
	} {
		if fl.path != "" {
			if err := checkFile(c.source(fl.long), fl.path); err != nil {
				return err
			}
		}
	}
	if strings.TrimSpace(c.server) == "" {
		return usagef("--server is empty")
	}
	return nil
}

// authMethods are the flags that each choose a way to authenticate;
// --password belongs to --user.
var authMethods = [...]string{"user", "token", "creds", "nkey"}

// authValue returns the value of authentication flag long.
func (c *connFlags) authValue(long string) string {
	switch long {
	case "user":
		return c.user
	case "token":
		return c.token
	case "creds":
		return c.creds
	case "nkey":
		return c.nkey
	}
	return ""
}

// checkAuth refuses more than one way to authenticate from the flags and
// the environment: nats.go would pick one silently (or send a token
// beside a user), and the credentials that were not used are a mistake
// the operator should hear about. The nats CLI accepts such combinations
// and uses the first of user, creds, nkey, plus any token; hbmesh does
// not. Call it before applyContext, which only fills in a context's
// credentials when none of these is given.
func (c *connFlags) checkAuth() error {
	var given []string
	for _, long := range authMethods {
		if c.authValue(long) != "" {
			given = append(given, c.source(long))
		}
	}
	if len(given) > 1 {
		return usagef("%s and %s are exclusive: give one of --user/--password, --token, --creds, --nkey", given[0], given[1])
	}
	return nil
}

// hasAuth reports whether the flags or the environment chose a way to
// authenticate.
func (c *connFlags) hasAuth() bool {
	for _, long := range authMethods {
		if c.authValue(long) != "" {
			return true
		}
	}
	return false
}

// source names where the value of flag long came from: --long, its
// environment variable, or the --context that filled it in.
func (c *connFlags) source(long string) string {
	if c.f == nil || c.f.isSet(long) {
		return "--" + long
	}
	if ev := c.f.env[long]; ev != "" && c.e != nil && c.e.getenv != nil && c.e.getenv(ev) != "" {
		return "$" + ev
	}
	if c.context != "" {
		return fmt.Sprintf("--%s (from --context %s)", long, c.context)
	}
	return "--" + long
}

// Reconnect policy. These are the settings every hbmesh connection uses;
// docs/OPERATIONS.md should describe them from here.
const (
	// Reconnect forever: a node or monitor outlives server restarts and
	// failovers. Only an authorization failure ends a connection (below).
	maxReconnects = -1
	// Retry quickly, with jitter so a fleet does not reconnect in lockstep
	// after a server restart.
	reconnectWait      = 250 * time.Millisecond
	reconnectJitter    = 100 * time.Millisecond
	reconnectJitterTLS = 500 * time.Millisecond
	// A small reconnect buffer: nodes skip beats while disconnected (a
	// replayed burst of stale beats would be worse than a gap), and the
	// monitor sends nothing that matters later, so the buffer only carries
	// unsubscribes and the odd publish racing the disconnect.
	reconnectBufSize = 64 << 10
	// Notice a dead server (or half-open TCP) within ~10-15s rather than
	// nats.go's default of minutes.
	pingInterval        = 5 * time.Second
	maxPingsOutstanding = 2
)

// conn is a NATS connection dialled by hbmesh. Its Context is cancelled
// when the connection fails for good (an authorization error, or a close
// nobody asked for); err then says why.
type conn struct {
	*nats.Conn
	ctx     context.Context
	cancel  context.CancelCauseFunc
	closing atomic.Bool
	// closed is closed by the connection's closed handler, the last
	// callback nats.go delivers for it.
	closed     chan struct{}
	closedOnce sync.Once
}

// errConnFailed wraps the reason a connection was given up.
var errConnFailed = errors.New("NATS connection failed")

// isAuthError reports whether err is an authentication or authorization
// failure, which retrying cannot fix.
func isAuthError(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrAccountAuthExpired) {
		return true
	}
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "authorization violation") || strings.Contains(s, "authentication")
}

// serverURL remembers the (redacted) URL of the server a connection was
// last connected to: nats.go has forgotten it by the time it reports the
// disconnect.
type serverURL struct{ p atomic.Pointer[string] }

func (s *serverURL) remember(nc *nats.Conn) {
	if u := nc.ConnectedUrlRedacted(); u != "" {
		s.p.Store(&u)
	}
}

func (s *serverURL) String() string {
	if p := s.p.Load(); p != nil {
		return *p
	}
	return ""
}

// options returns the nats.Options for a connection named name; last is
// kept up to date with the server it is connected to. closing reports
// whether the connection is being closed on purpose: its disconnect is
// then expected, and logged only at debug level.
func (c *connFlags) options(name string, log *slog.Logger, last *serverURL, closing func() bool, fail func(*nats.Conn, error)) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.Timeout(c.timeout),
		nats.MaxReconnects(maxReconnects),
		nats.ReconnectWait(reconnectWait),
		nats.ReconnectJitter(reconnectJitter, reconnectJitterTLS),
		nats.ReconnectBufSize(reconnectBufSize),
		nats.PingInterval(pingInterval),
		nats.MaxPingsOutstanding(maxPingsOutstanding),
		// A wrong URL must fail at startup with a clear error, not retry.
		nats.RetryOnFailedConnect(false),
		// Servers a cluster advertises are kept (the default): they are
		// what failover uses when the seed URL's server goes away.
		nats.ConnectHandler(last.remember),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			switch {
			case closing():
				// A shutdown, or the demo cutting a node off: not news,
				// and a warning here would read like a fault.
				log.Debug("NATS disconnected", "server", last.String(), "err", err)
			case err != nil:
				log.Warn("NATS disconnected", "server", last.String(), "err", err)
			default:
				log.Info("NATS disconnected", "server", last.String())
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			last.remember(nc)
			log.Info("NATS reconnected", "server", last.String())
		}),
		nats.DiscoveredServersHandler(func(nc *nats.Conn) {
			log.Debug("NATS servers discovered", "servers", nc.DiscoveredServers())
		}),
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			if isAuthError(err) {
				// nats.go would retry (and give up only after repeats);
				// credentials do not fix themselves, so stop now.
				fail(nc, fmt.Errorf("%w: %w", errConnFailed, err))
				return
			}
			if sub != nil {
				log.Warn("NATS error", "subject", sub.Subject, "err", err)
			} else {
				log.Warn("NATS error", "err", err)
			}
		}),
	}
	switch {
	case c.user != "":
		opts = append(opts, nats.UserInfo(c.user, c.password))
	case c.creds != "":
		opts = append(opts, nats.UserCredentials(c.creds))
	case c.nkey != "":
		o, err := nats.NkeyOptionFromSeed(c.nkey)
		if err != nil {
			return nil, fmt.Errorf("--nkey %s: %w", c.nkey, err)
		}
		opts = append(opts, o)
	}
	if c.token != "" {
		opts = append(opts, nats.Token(c.token))
	}
	if c.inboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(c.inboxPrefix))
	}
	if c.tlsCert != "" {
		opts = append(opts, nats.ClientCert(c.tlsCert, c.tlsKey))
	}
	if c.tlsCA != "" {
		opts = append(opts, nats.RootCAs(c.tlsCA))
	}
	return opts, nil
}

// dial connects to the servers in --server. It fails at once, with one
// line, when no server can be reached or authorization is refused. The
// returned conn's Context derives from ctx and is also cancelled when the
// connection later fails for good. extra options are appended last.
func (c *connFlags) dial(ctx context.Context, name string, log *slog.Logger, extra ...nats.Option) (*conn, error) {
	cn := &conn{closed: make(chan struct{})}
	cn.ctx, cn.cancel = context.WithCancelCause(ctx)
	fail := func(nc *nats.Conn, err error) {
		cn.cancel(err)
		if !cn.closing.Swap(true) {
			log.Error("giving up on NATS", "err", err)
			// Close is safe from a callback: it only queues the closed
			// handler on the same dispatcher.
			nc.Close()
		}
	}
	last := new(serverURL)
	opts, err := c.options(name, log, last, cn.closing.Load, fail)
	if err != nil {
		cn.cancel(nil)
		return nil, err
	}
	opts = append(opts, nats.ClosedHandler(func(nc *nats.Conn) {
		defer cn.closedOnce.Do(func() { close(cn.closed) })
		if cn.closing.Load() {
			return
		}
		err := nc.LastError()
		if err == nil {
			err = errors.New("closed")
		}
		cn.cancel(fmt.Errorf("%w: %w", errConnFailed, err))
	}))
	opts = append(opts, extra...)
	nc, err := nats.Connect(c.server, opts...)
	if err != nil {
		cn.cancel(nil)
		if errors.Is(err, nats.ErrNoServers) {
			// nats.go turns "connection refused" into this, which names
			// neither the cause nor the fix.
			return nil, fmt.Errorf("connect %s: %w (connection refused: is a NATS server listening there?)", redactURLs(c.server), err)
		}
		return nil, fmt.Errorf("connect %s: %w", redactURLs(c.server), err)
	}
	cn.Conn = nc
	// The connect handler runs asynchronously; do not let a disconnect
	// race it to an empty URL.
	last.remember(nc)
	log.Info("NATS connected", "server", last.String(), "name", name)
	return cn, nil
}

// Context is cancelled when the caller's context is, or when the
// connection fails for good.
func (cn *conn) Context() context.Context { return cn.ctx }

// failure returns why the connection was given up, or nil if it was not.
func (cn *conn) failure() error {
	if err := context.Cause(cn.ctx); errors.Is(err, errConnFailed) {
		return err
	}
	return nil
}

// expectClose marks the connection as about to be closed on purpose, so
// that a disconnect the caller causes first (the demo dropping a node's
// TCP connection under it) is not logged as a failure. close must follow.
func (cn *conn) expectClose() { cn.closing.Store(true) }

// close closes the connection on purpose. It waits, briefly, for
// nats.go to deliver the connection's last callbacks, so that their log
// lines ("NATS disconnected") come before whatever the command prints on
// its way out: the reason it failed, on the last line of stderr.
func (cn *conn) close() {
	cn.expectClose()
	cn.Conn.Close()
	select {
	case <-cn.closed:
	case <-time.After(2 * time.Second):
	}
	cn.cancel(nil)
}

// redactURLs hides passwords in a comma-separated URL list.
func redactURLs(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			if scheme := strings.Index(p, "://"); scheme >= 0 && scheme < at {
				parts[i] = p[:scheme+3] + "***" + p[at:]
			}
		}
	}
	return strings.Join(parts, ",")
}
