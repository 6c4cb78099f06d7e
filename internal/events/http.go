package events

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/hbmesh/hbmesh/internal/cfgerr"
)

// Defaults of [HTTPConfig].
const (
	DefaultHTTPQueueSize      = 1024
	DefaultHTTPTimeout        = 10 * time.Second
	DefaultHTTPInitialBackoff = 500 * time.Millisecond
	DefaultHTTPMaxBackoff     = 30 * time.Second
	DefaultHTTPMaxRetries     = 8
	DefaultHTTPDrainTimeout   = 2 * time.Second
)

// ErrRejected is wrapped by a [Poster.Post] error when the receiver
// answered 4xx other than 408 and 429: it will not change its mind, so the
// post is not worth retrying.
var ErrRejected = errors.New("rejected by the receiver")

// HTTPConfig is how the sinks that POST JSON ([Webhook], [Alertmanager])
// deliver it: a bounded queue per URL, one request at a time, retried with
// exponential backoff.
type HTTPConfig struct {
	// QueueSize bounds the posts waiting for delivery, per URL. Default
	// 1024.
	QueueSize int
	// Timeout bounds one request, including reading the response.
	// Default 10s.
	Timeout time.Duration
	// InitialBackoff is the wait before the first retry; each further
	// retry doubles it, up to MaxBackoff. Defaults 500ms and 30s.
	InitialBackoff, MaxBackoff time.Duration
	// MaxRetries is how many times a failed post is retried. Default 8;
	// negative means no retries. A post the receiver rejected (see
	// [ErrRejected]) is not retried.
	MaxRetries int
	// DrainTimeout bounds how long Run goes on delivering, once its
	// context is done, the post in flight and those still queued (a
	// peer's resolution emitted just before a monitor stops, say). Posts
	// it leaves undelivered are counted: in flight as failed, queued as
	// dropped. Default 2s.
	DrainTimeout time.Duration
	// Header is added to every request, e.g. an Authorization header.
	// Its values are never logged. Default: none.
	Header http.Header
	// Client sends the requests. Default: a new http.Client without a
	// global timeout (Timeout applies per request). Whatever its
	// CheckRedirect, redirects are not followed: net/http would send
	// every header but Authorization and cookies on to wherever the
	// receiver points, tokens included.
	Client *http.Client
}

// DefaultHTTPConfig returns an HTTPConfig with every default filled in.
func DefaultHTTPConfig() HTTPConfig {
	return HTTPConfig{
		QueueSize:      DefaultHTTPQueueSize,
		Timeout:        DefaultHTTPTimeout,
		InitialBackoff: DefaultHTTPInitialBackoff,
		MaxBackoff:     DefaultHTTPMaxBackoff,
		MaxRetries:     DefaultHTTPMaxRetries,
		DrainTimeout:   DefaultHTTPDrainTimeout,
	}
}

func (c *HTTPConfig) fillDefaults() {
	d := DefaultHTTPConfig()
	c.QueueSize = cmp.Or(c.QueueSize, d.QueueSize)
	c.Timeout = cmp.Or(c.Timeout, d.Timeout)
	c.InitialBackoff = cmp.Or(c.InitialBackoff, d.InitialBackoff)
	c.MaxBackoff = cmp.Or(c.MaxBackoff, d.MaxBackoff)
	// Zero retries is the default; a negative count asks for none.
	c.MaxRetries = max(cmp.Or(c.MaxRetries, d.MaxRetries), 0)
	c.DrainTimeout = cmp.Or(c.DrainTimeout, d.DrainTimeout)
	c.Client = cmp.Or(c.Client, &http.Client{})
}

// Validate reports the first bad field by name and value. Header values
// are never part of the error.
func (c *HTTPConfig) Validate() error { return c.validate("http delivery") }

// validate is Validate for the configuration invalid names, the one that
// embeds c.
func (c *HTTPConfig) validate(invalid cfgerr.Of) error {
	if err := ValidateHeader(c.Header); err != nil {
		return invalid.Wrap("Header", nil, err)
	}
	switch {
	case c.QueueSize < 1:
		return invalid.Field("QueueSize", c.QueueSize, "must be at least 1")
	case c.Timeout < time.Millisecond:
		return invalid.Field("Timeout", c.Timeout, "must be at least 1ms")
	case c.InitialBackoff < time.Millisecond:
		return invalid.Field("InitialBackoff", c.InitialBackoff, "must be at least 1ms")
	case c.MaxBackoff < c.InitialBackoff:
		return invalid.Field("MaxBackoff", c.MaxBackoff, fmt.Sprintf("must be at least InitialBackoff (%v)", c.InitialBackoff))
	case c.MaxRetries > 100:
		return invalid.Field("MaxRetries", c.MaxRetries, "must be at most 100")
	case c.DrainTimeout < 0:
		return invalid.Field("DrainTimeout", c.DrainTimeout, "must not be negative")
	}
	return nil
}

// ValidateHeader checks that every name in h is an HTTP field name. Its
// error shows neither a value nor the bad name: a name that is not one is
// often a whole "Authorization: Bearer <token>" line.
func ValidateHeader(h http.Header) error {
	for name := range h {
		if !validHeaderName(name) {
			return errors.New("a header name is not an HTTP field name (letters, digits and -; not shown: it may hold a secret)")
		}
	}
	return nil
}

// validHeaderName reports whether s is an HTTP field name (RFC 9110 token).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// ValidateURL checks that s is an absolute http or https URL. Its error
// shows only the scheme and host of s: the rest of a webhook URL (its
// path, query, user info) often holds a token.
func ValidateURL(s string) error {
	u, err := url.Parse(s)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		return nil
	}
	shown := strconv.Quote(endpoint(s))
	if s != "" && endpoint(s) == "" {
		shown = "(not shown)"
	}
	return fmt.Errorf("%s is not an http or https URL", shown)
}

// checkURL is ValidateURL as an error of the configuration invalid names,
// about field.
func checkURL(invalid cfgerr.Of, field, s string) error {
	if err := ValidateURL(s); err != nil {
		return invalid.Wrap(field, nil, err)
	}
	return nil
}

// endpoint is the part of a URL safe to log: its scheme and host, or ""
// when it has no host. Paths, queries and user info of webhook URLs often
// carry tokens.
func endpoint(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// Poster POSTs JSON to one URL, one attempt per call. Create it with
// [NewPoster]; it is safe for concurrent use.
type Poster struct {
	url, endpoint string
	header        http.Header
	timeout       time.Duration
	client        *http.Client
}

// NewPoster returns a Poster for url with cfg's Header, Timeout and
// Client. Zero fields of cfg take their defaults. It does no I/O.
func NewPoster(rawURL string, cfg HTTPConfig) (*Poster, error) {
	cfg.fillDefaults()
	const invalid cfgerr.Of = "http delivery"
	if err := checkURL(invalid, "URL", rawURL); err != nil {
		return nil, err
	}
	if err := cfg.validate(invalid); err != nil {
		return nil, err
	}
	client := *cfg.Client // the caller's Transport, without redirects
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Poster{url: rawURL, endpoint: endpoint(rawURL), header: cfg.Header, timeout: cfg.Timeout, client: &client}, nil
}

// Endpoint returns the scheme and host of the Poster's URL, the part that
// is safe to log.
func (p *Poster) Endpoint() string { return p.endpoint }

// Post sends body, a JSON document, and returns nil on a 2xx answer. An
// error names the endpoint (never the full URL, which may hold a token)
// and the status with the start of the answer; it wraps [ErrRejected] when
// a retry would not help. A redirect is such an answer: it is not
// followed (see [HTTPConfig.Client]).
func (p *Poster) Post(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("post %s: build request: %w", p.endpoint, ErrRejected)
	}
	for name, vs := range p.header {
		req.Header[http.CanonicalHeaderKey(name)] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hbmesh")
	resp, err := p.client.Do(req)
	if err != nil {
		// *url.Error repeats the full URL; keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("post %s: %w", p.endpoint, err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // allow connection reuse
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		// Its Location is not shown: it may hold a token too.
		return fmt.Errorf("post %s: %s: redirects are not followed; give the URL it redirects to (%w)", p.endpoint, resp.Status, ErrRejected)
	}
	err = fmt.Errorf("post %s: %s: %s", p.endpoint, resp.Status, bytes.TrimSpace(snippet))
	if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
		return fmt.Errorf("%w (%w)", err, ErrRejected)
	}
	return err
}

// closeIdle lets go of idle keep-alive connections, which hold goroutines.
func (p *Poster) closeIdle() { p.client.CloseIdleConnections() }

// post is one queued request of an [outbox].
type post struct {
	body []byte
	// items is how many events or alerts the post carries: the unit of
	// the sink's counters.
	items uint64
	// attrs describe the post in logs, e.g. "peer", id.
	attrs []any
}

// outbox delivers posts to one URL, one at a time and in order, retrying
// each with exponential backoff. It is the queue and retry loop shared by
// the webhook and the Alertmanager sink.
type outbox struct {
	sink string // names the sink in logs: webhook, alertmanager
	p    *Poster
	cfg  *HTTPConfig
	q    chan post
	st   *counters
	drop *dropLog
	log  *slog.Logger
}

func newOutbox(sink string, p *Poster, cfg *HTTPConfig, st *counters, drop *dropLog, log *slog.Logger) *outbox {
	return &outbox{sink: sink, p: p, cfg: cfg, q: make(chan post, cfg.QueueSize), st: st, drop: drop, log: log}
}

// put queues p without blocking; a full queue drops it, counted and
// logged.
func (o *outbox) put(p post) {
	select {
	case o.q <- p:
	default:
		o.st.dropped.Add(p.items)
		o.drop.drop("queue full")
	}
}

// run delivers queued posts until ctx is done, then drains: see serve.
func (o *outbox) run(ctx context.Context) {
	serve(ctx, o.q, o.cfg.DrainTimeout, o.deliver, nil, func(p *post) uint64 { return p.items }, o.st, o.drop)
	o.p.closeIdle()
}

func (o *outbox) deliver(ctx context.Context, p *post) {
	policy := retryPolicy{o.cfg.MaxRetries, o.cfg.InitialBackoff, o.cfg.MaxBackoff}
	attempts, err := o.st.retry(ctx, p.items, policy,
		func() error { return o.p.Post(ctx, p.body) },
		func(err error) bool { return errors.Is(err, ErrRejected) },
		func(attempt int, err error) {
			o.log.Debug("post failed; retrying", append(p.attrs, "sink", o.sink, "url", o.p.endpoint, "attempt", attempt, "err", err)...)
		})
	if err != nil {
		o.log.Warn("post not delivered", append(p.attrs, "sink", o.sink, "url", o.p.endpoint, "attempts", attempts, "err", err)...)
	}
}
