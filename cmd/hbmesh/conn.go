package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/internal/redact"
)

// defaultServer is the NATS URL used when neither --server nor $NATS_URL
// is given.
const defaultServer = "nats://127.0.0.1:4222"

// connFlags are the connection flags, named exactly like the nats CLI's
// (natscli v0.5.0), and read from the same environment variables, so the
// two tools share muscle memory and environment.
type connFlags struct {
	Context     string        `placeholder:"NAME" env:"NATS_CONTEXT" help:"nats CLI context NAME (or path to its JSON file) to take settings from; environment variables and flags override it"`
	Server      string        `short:"s" placeholder:"URL" default:"${server}" env:"NATS_URL" secret:"" help:"NATS server URLs, comma separated"`
	User        string        `placeholder:"USER" env:"NATS_USER" help:"connect as USER (with --password); --user, --token, --creds and --nkey are exclusive"`
	Password    string        `placeholder:"PASSWORD" env:"NATS_PASSWORD" secret:"" help:"PASSWORD of --user"`
	Token       string        `placeholder:"TOKEN" env:"NATS_TOKEN" secret:"" help:"authentication TOKEN"`
	Creds       string        `placeholder:"FILE" env:"NATS_CREDS" help:"user credentials FILE"`
	Nkey        string        `placeholder:"FILE" env:"NATS_NKEY" help:"user NKEY seed FILE"`
	TLSCert     string        `name:"tlscert" placeholder:"FILE" env:"NATS_CERT" help:"TLS client certificate FILE"`
	TLSKey      string        `name:"tlskey" placeholder:"FILE" env:"NATS_KEY" help:"TLS private key FILE"`
	TLSCA       string        `name:"tlsca" placeholder:"FILE" env:"NATS_CA" help:"TLS certificate authority chain FILE"`
	InboxPrefix string        `placeholder:"PREFIX" env:"HBMESH_INBOX_PREFIX" help:"custom inbox PREFIX for replies (default _INBOX); must match the server's permissions, e.g. _INBOX_monitor1 with deploy/auth"`
	Timeout     time.Duration `placeholder:"DURATION" default:"${timeout}" min:"1ms" max:"1h" env:"NATS_TIMEOUT" help:"connect timeout; hbmesh probe also waits this long for its answer"`

	// e is the environment the flags were parsed in; set by validate.
	e *env
	// ctxOpts is what --context adds to the connection besides the values
	// it fills into the fields above: its credentials, when no flag or
	// variable chose any, and the settings hbmesh has no flag for (a SOCKS
	// proxy, TLS handshake first). ctxUser is the user among those
	// credentials. Both are set by validate.
	ctxOpts []nats.Option
	ctxUser string
	// ctxWho names the credentials the context presents, for principal;
	// empty when it presents none. Set by validate.
	ctxWho string
	// jetStream, set by the command before validate, says that it uses
	// JetStream; applyContext then refuses a context's JetStream domain
	// and API prefix, which hbmesh does not apply.
	jetStream bool
	// refused, when the command sets it before dialling, picks out the
	// permission violations it cannot work past: it returns the error to
	// stop with, or nil to log the violation and carry on.
	refused func(violation string) error
}

// validate applies --context and checks combinations the flag types
// cannot. Run calls it before dialling.
func (c *connFlags) validate(e *env) error {
	c.e = e
	if err := c.checkAuth(); err != nil {
		return err
	}
	if err := c.applyContext(); err != nil {
		return err
	}
	if c.Password != "" && c.User == "" && c.ctxUser == "" {
		return usagef("%s needs --user (or $NATS_USER)", c.source("password"))
	}
	if p := c.InboxPrefix; p != "" {
		if strings.ContainsAny(p, "*> \t\r\n") || strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".") || strings.Contains(p, "..") {
			return usagef("%s %q: want subject tokens without wildcards", c.source("inbox-prefix"), p)
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return usagef("--tlscert and --tlskey must be given together")
	}
	for _, fl := range []struct{ name, path string }{
		{"creds", c.Creds}, {"nkey", c.Nkey}, {"tlscert", c.TLSCert}, {"tlskey", c.TLSKey}, {"tlsca", c.TLSCA},
	} {
		if fl.path != "" {
			if err := checkFile(c.source(fl.name), fl.path); err != nil {
				return err
			}
		}
	}
	for _, fl := range []struct{ name, path string }{{"creds", c.Creds}, {"nkey", c.Nkey}, {"tlsca", c.TLSCA}} {
		if fl.path != "" {
			if err := checkConnFile(fl.name, c.source(fl.name), fl.path); err != nil {
				return err
			}
		}
	}
	if c.TLSCert != "" {
		if err := checkCertKey(c.source("tlscert"), c.TLSCert, c.source("tlskey"), c.TLSKey); err != nil {
			return err
		}
	}
	return checkServers(c.source("server"), c.Server)
}

// checkServers checks each URL of list as nats.go will read it, so that a
// typo is a usage error naming its flag or variable, not a connect error
// that systemd retries forever. The message shows a URL redacted: a
// malformed one may still hold a password.
func checkServers(flag, list string) error {
	if strings.TrimSpace(list) == "" {
		return usagef("%s is empty", flag)
	}
	for _, p := range strings.Split(list, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		s := p
		if !strings.Contains(s, "://") {
			s = "nats://" + s // as nats.go reads a bare host:port
		}
		var why string
		u, err := url.Parse(s)
		switch {
		case err != nil:
			why = "does not parse"
		case u.Scheme != "nats" && u.Scheme != "tls" && u.Scheme != "ws" && u.Scheme != "wss":
			why = fmt.Sprintf("scheme %q", u.Scheme)
		case u.Hostname() == "":
			why = "no host"
		case (u.Scheme == "nats" || u.Scheme == "tls") && strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "":
			why = "more than a host and port"
		default:
			continue
		}
		return usagef("%s %s: %s; want nats://[USER:PASSWORD@]HOST[:PORT] (or tls://, ws://, wss://), several separated by commas", flag, quoteURL(p), why)
	}
	return nil
}

// authMethods are the flags that each choose a way to authenticate;
// --password belongs to --user.
var authMethods = [...]string{"user", "token", "creds", "nkey"}

// authValue returns the value of authentication flag name.
func (c *connFlags) authValue(name string) string {
	switch name {
	case "user":
		return c.User
	case "token":
		return c.Token
	case "creds":
		return c.Creds
	case "nkey":
		return c.Nkey
	}
	return ""
}

// checkAuth refuses more than one way to authenticate from the flags and
// the environment: nats.go would pick one silently (or send a token
// beside a user), and the credentials that were not used are a mistake
// the operator should hear about. The nats CLI accepts such combinations
// and uses the first of user, creds, nkey, plus any token; hbmesh does
// not. Call it before applyContext, which only adds a context's
// credentials when none of these is given.
func (c *connFlags) checkAuth() error {
	var given []string
	for _, name := range authMethods {
		if c.authValue(name) != "" {
			given = append(given, c.source(name))
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
	for _, name := range authMethods {
		if c.authValue(name) != "" {
			return true
		}
	}
	return false
}

// source names where the value of flag name came from: --name, its
// environment variable, or the --context that filled it in.
func (c *connFlags) source(name string) string {
	if c.e != nil && c.e.given(name) {
		return c.e.source(name)
	}
	if c.Context != "" {
		return fmt.Sprintf("--%s (from %s)", name, c.contextName())
	}
	return "--" + name
}

// principal names the credentials the connection presents, for a
// refusal that says whose permissions to check: a user's name, a file's
// path, where a token came from; never a secret. Without credentials it
// is the server's no_auth_user.
func (c *connFlags) principal() string {
	if who := c.credentials(); who != "" {
		return who
	}
	return "the server's user for clients without credentials (no_auth_user)"
}

// credentials names the credentials the connection presents, as
// principal does, or is "" when it presents none.
func (c *connFlags) credentials() string {
	switch {
	case c.User != "":
		return fmt.Sprintf("user %q (%s)", c.User, c.source("user"))
	case c.Creds != "":
		return fmt.Sprintf("the user of %s %s", c.source("creds"), quotePath(c.Creds))
	case c.Nkey != "":
		return fmt.Sprintf("the nkey of %s %s", c.source("nkey"), quotePath(c.Nkey))
	case c.Token != "":
		return "the token of " + c.source("token")
	case c.ctxWho != "":
		return c.ctxWho
	}
	for _, p := range strings.Split(c.Server, ",") {
		p = strings.TrimSpace(p)
		if !strings.Contains(p, "://") {
			p = "nats://" + p
		}
		if u, err := url.Parse(p); err == nil && u.User != nil {
			if _, ok := u.User.Password(); ok {
				return fmt.Sprintf("user %q of the %s URL", u.User.Username(), c.source("server"))
			}
			return "the token in the " + c.source("server") + " URL"
		}
	}
	if c.TLSCert != "" {
		return fmt.Sprintf("the TLS client certificate of %s %s", c.source("tlscert"), quotePath(c.TLSCert))
	}
	return ""
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

// refusal is a permission violation that leaves the command nothing
// useful to do: a node refused its own subjects, a monitor refused its
// replies. It ends the connection as an authorization failure does, and
// the command prints it as its last line.
type refusal struct{ msg string }

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return errConnFailed }

// refusedf formats a refusal.
func refusedf(format string, args ...any) error {
	return &refusal{msg: fmt.Sprintf(format, args...)}
}

// violation returns the server's words for a permission violation, such
// as `Permissions Violation for Publish to "hb.x"`, or "" if err is not
// one.
func violation(err error) string {
	if !errors.Is(err, nats.ErrPermissionViolation) {
		return ""
	}
	return strings.TrimPrefix(err.Error(), nats.ErrPermissionViolation.Error()+": ")
}

// publishRefused and subscribeRefused are the server's words for a
// refused publish to, or subscription to, subject.
func publishRefused(subject string) string {
	return "Permissions Violation for Publish to " + strconv.Quote(subject)
}

func subscribeRefused(subject string) string {
	return "Permissions Violation for Subscription to " + strconv.Quote(subject)
}

// inboxRefused returns the refusal for violation v if it refuses a
// subscription to the connection's inbox, where every answer to its
// requests arrives, or nil.
func (c *connFlags) inboxRefused(v string) error {
	prefix := c.InboxPrefix
	if prefix == "" {
		prefix = strings.TrimSuffix(nats.InboxPrefix, ".")
	}
	if !strings.HasPrefix(v, `Permissions Violation for Subscription to "`+prefix+".") {
		return nil
	}
	return refusedf("the server's permissions refuse replies on inbox prefix %q (%s): set %s to the prefix %s may subscribe to (_INBOX_<user> with the permissions of docs/SECURITY.md)",
		prefix, v, c.source("inbox-prefix"), c.principal())
}

// refuseAny makes every permission violation end a one-shot command
// (probe, status): it cannot succeed without what was refused.
func (c *connFlags) refuseAny(v string) error {
	if err := c.inboxRefused(v); err != nil {
		return err
	}
	return refusedf("the server's permissions refuse it (%s): allow that to %s, or connect as a user that may", v, c.principal())
}

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
	// Not ConnectedUrlRedacted: it shows a token given as nats://TOKEN@host.
	if u := nc.ConnectedUrl(); u != "" {
		u = redact.URL(u)
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
		nats.Timeout(c.Timeout),
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
			// scheme://host:port each, as the cluster advertises them:
			// nats.go keeps no credentials in these.
			log.Debug("NATS servers discovered", "servers", nc.DiscoveredServers())
		}),
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			if v := violation(err); v != "" && c.refused != nil {
				if rerr := c.refused(v); rerr != nil {
					fail(nc, rerr)
					return
				}
			}
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
	case c.User != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	case c.Creds != "":
		opts = append(opts, nats.UserCredentials(c.Creds))
	case c.Nkey != "":
		o, err := nats.NkeyOptionFromSeed(c.Nkey)
		if err != nil {
			// nkeys' errors never quote the key.
			return nil, fmt.Errorf("%s %q: %w", c.source("nkey"), c.Nkey, err)
		}
		opts = append(opts, o)
	}
	if c.Token != "" {
		opts = append(opts, nats.Token(c.Token))
	}
	if c.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(c.InboxPrefix))
	}
	if c.TLSCert != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	return append(opts, c.ctxOpts...), nil
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
			if r := (*refusal)(nil); !errors.As(err, &r) {
				// A refusal is the command's last line by itself.
				log.Error("giving up on NATS", "err", err)
			}
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
	nc, err := nats.Connect(c.Server, opts...)
	if err != nil {
		cn.cancel(nil)
		servers := redactURLs(c.Server)
		if errors.Is(err, nats.ErrNoServers) {
			// nats.go turns "connection refused" into this, which names
			// neither the cause nor the fix.
			return nil, fmt.Errorf("connect %s: %w (connection refused: is a NATS server listening there?)", servers, err)
		}
		// Some of nats.go's errors (url.Parse's, say) quote the URL.
		msg := redactIn(err.Error(), c.Server)
		if who := c.credentials(); isAuthError(err) && who != "" {
			msg += " (the server does not accept " + who + ")"
		} else if isAuthError(err) {
			msg += " (no credentials given: set --creds, --nkey, --user and --password, --token or --context)"
		}
		return nil, fmt.Errorf("connect %s: %s", servers, msg)
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
