package events

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hbmesh/hbmesh/internal/cfgerr"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/wire"
)

// Defaults of [WebhookConfig].
const (
	DefaultWebhookQueueSize      = 1024
	DefaultWebhookTimeout        = 10 * time.Second
	DefaultWebhookInitialBackoff = 500 * time.Millisecond
	DefaultWebhookMaxBackoff     = 30 * time.Second
	DefaultWebhookMaxRetries     = 8
	// AlertName is the alertname label of every alert the webhook sends.
	AlertName = "HbmeshPeerDead"
	// Receiver is the receiver field of every payload.
	Receiver = "hbmesh"
)

// WebhookConfig configures a [Webhook].
type WebhookConfig struct {
	// URL receives the POSTs. Required; http or https.
	URL string
	// MonitorID is the "monitor" label of every alert. Default "".
	MonitorID string
	// Prefix is the "prefix" label. Default wire.DefaultPrefix ("hb").
	Prefix string
	// ExternalURL is sent as externalURL and generatorURL, e.g. the
	// monitor's UI. Default "".
	ExternalURL string
	// QueueSize bounds the events waiting for delivery. Default 1024.
	QueueSize int
	// Timeout bounds one request, including reading the response.
	// Default 10s.
	Timeout time.Duration
	// InitialBackoff is the wait before the first retry; each further
	// retry doubles it, up to MaxBackoff. Defaults 500ms and 30s.
	InitialBackoff, MaxBackoff time.Duration
	// MaxRetries is how many times a failed delivery is retried. Default
	// 8; negative means no retries. A 4xx answer other than 408 and 429 is
	// not retried: the receiver will not change its mind.
	MaxRetries int
	// Client sends the requests. Default: a new http.Client without a
	// global timeout (Timeout applies per request).
	Client *http.Client
	// Logger receives the webhook's logs. Default: discard.
	Logger *slog.Logger
}

// DefaultWebhookConfig returns a WebhookConfig posting to url with every
// default filled in.
func DefaultWebhookConfig(url string) WebhookConfig {
	return WebhookConfig{
		URL:            url,
		Prefix:         wire.DefaultPrefix,
		QueueSize:      DefaultWebhookQueueSize,
		Timeout:        DefaultWebhookTimeout,
		InitialBackoff: DefaultWebhookInitialBackoff,
		MaxBackoff:     DefaultWebhookMaxBackoff,
		MaxRetries:     DefaultWebhookMaxRetries,
	}
}

func (c *WebhookConfig) fillDefaults() {
	d := DefaultWebhookConfig("")
	if c.Prefix == "" {
		c.Prefix = d.Prefix
	}
	if c.QueueSize == 0 {
		c.QueueSize = d.QueueSize
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.InitialBackoff == 0 {
		c.InitialBackoff = d.InitialBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = d.MaxBackoff
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = d.MaxRetries
	} else if c.MaxRetries < 0 {
		c.MaxRetries = 0
	}
	if c.Client == nil {
		c.Client = &http.Client{}
	}
	c.Logger = discardIfNil(c.Logger)
}

// Validate reports the first bad field by name and value.
func (c *WebhookConfig) Validate() error {
	const invalid cfgerr.Of = "webhook"
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalid.Field("URL", c.URL, "is not an http or https URL")
	}
	if err := wire.ValidatePrefix(c.Prefix); err != nil {
		return invalid.Wrap("Prefix", nil, err)
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
	}
	return nil
}

// Webhook posts Alertmanager-compatible notifications (webhook payload
// version 4) about dead peers. Create it with [NewWebhook].
//
// A peer going dead sends a "firing" alert. The same peer then leaving
// the dead state (a beat, a probe answer, a restart or a goodbye) sends
// "resolved" with endsAt set. Other events send nothing. Each POST carries
// one alert, labelled alertname=HbmeshPeerDead, peer, host, monitor and
// prefix; its fingerprint is derived from those labels, so the resolved
// notification matches the firing one. Deliveries happen one at a time,
// in event order, with retries and exponential backoff.
type Webhook struct {
	cfg  WebhookConfig
	q    chan monitor.Event
	st   counters
	drop dropLog
	runs atomic.Bool

	// firing maps a dead peer to when its alert started. Only the worker
	// goroutine touches it.
	firing map[string]time.Time
}

// NewWebhook checks cfg and returns the webhook. Zero fields of cfg take
// their defaults. It does no I/O.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	cfg.fillDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Webhook{
		cfg:    cfg,
		q:      make(chan monitor.Event, cfg.QueueSize),
		drop:   dropLog{log: cfg.Logger, sink: "webhook"},
		firing: make(map[string]time.Time),
	}, nil
}

// Handle queues ev if it fires or resolves an alert. It never blocks; see
// the package doc.
func (w *Webhook) Handle(ev monitor.Event) {
	if ev.State != monitor.StateDead && ev.Prev != monitor.StateDead {
		return
	}
	enqueue(w.q, ev, &w.st, &w.drop)
}

// Stats returns the webhook's counters.
func (w *Webhook) Stats() Stats { return w.st.snapshot() }

// Run delivers queued notifications until ctx is done, which also aborts
// a request or backoff in progress (counted as failed). Events still
// queued are counted as dropped. Run returns nil once its goroutine has
// exited. Run may be called once; a second call returns [ErrRunTwice].
func (w *Webhook) Run(ctx context.Context) error {
	if !w.runs.CompareAndSwap(false, true) {
		return ErrRunTwice
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			// Prefer shutdown over starting another delivery.
			if ctx.Err() != nil {
				return
			}
			select {
			case ev := <-w.q:
				w.deliver(ctx, &ev)
			case <-ctx.Done():
				return
			}
		}
	})
	wg.Wait()
	// Idle keep-alive connections hold goroutines; let them go.
	w.cfg.Client.CloseIdleConnections()
	for {
		select {
		case <-w.q:
			w.st.dropped.Add(1)
			w.drop.drop("shutdown")
		default:
			return nil
		}
	}
}

// Payload is the Alertmanager webhook (version 4) body.
type Payload struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is one alert of a [Payload].
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Statuses of a [Payload] and an [Alert].
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// payload builds the notification for ev, updating the firing set.
func (w *Webhook) payload(ev *monitor.Event) *Payload {
	labels := map[string]string{
		"alertname": AlertName,
		"peer":      ev.ID,
		"host":      ev.Host,
		"monitor":   w.cfg.MonitorID,
		"prefix":    w.cfg.Prefix,
	}
	a := Alert{
		Labels:       labels,
		GeneratorURL: w.cfg.ExternalURL,
		Fingerprint:  fingerprint(labels),
	}
	if ev.State == monitor.StateDead {
		a.Status = StatusFiring
		a.StartsAt = ev.Time.UTC()
		w.firing[ev.ID] = a.StartsAt
		a.Annotations = map[string]string{
			"summary":     fmt.Sprintf("hbmesh peer %s is dead", ev.ID),
			"description": fmt.Sprintf("Peer %s (host %q, boot %s) sent no beat and did not answer its probe; last seq %d, interval %s. Reported by monitor %q.", ev.ID, ev.Host, ev.Boot, ev.Seq, ev.Interval, w.cfg.MonitorID),
		}
	} else {
		a.Status = StatusResolved
		start, ok := w.firing[ev.ID]
		if !ok {
			start = ev.Time.UTC() // the firing notification was dropped
		}
		delete(w.firing, ev.ID)
		a.StartsAt, a.EndsAt = start, ev.Time.UTC()
		a.Annotations = map[string]string{
			"summary":     fmt.Sprintf("hbmesh peer %s is no longer dead", ev.ID),
			"description": fmt.Sprintf("Peer %s (host %q) is now %s (%s). Reported by monitor %q.", ev.ID, ev.Host, ev.State, ev.Reason, w.cfg.MonitorID),
		}
	}
	group := map[string]string{"alertname": AlertName, "peer": ev.ID}
	return &Payload{
		Version:           "4",
		GroupKey:          fmt.Sprintf("{}:{alertname=%q, peer=%q}", AlertName, ev.ID),
		Status:            a.Status,
		Receiver:          Receiver,
		GroupLabels:       group,
		CommonLabels:      labels,
		CommonAnnotations: a.Annotations,
		ExternalURL:       w.cfg.ExternalURL,
		Alerts:            []Alert{a},
	}
}

// fingerprint hashes the sorted labels, like Alertmanager's 16 hex digit
// fingerprints (the values differ: this is not its FNV-based hash).
func fingerprint(labels map[string]string) string {
	b := wire.AppendLabels(nil, labels) // sorted by key
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// errPermanent marks a delivery failure not worth retrying.
type errPermanent struct{ err error }

func (e *errPermanent) Error() string { return e.err.Error() }
func (e *errPermanent) Unwrap() error { return e.err }

func (w *Webhook) deliver(ctx context.Context, ev *monitor.Event) {
	p := w.payload(ev)
	body, err := json.Marshal(p)
	if err != nil {
		w.st.dropped.Add(1)
		w.cfg.Logger.Error("webhook payload not encoded", "peer", ev.ID, "err", err)
		return
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			w.st.retries.Add(1)
			if !sleepCtx(ctx.Done(), backoff(w.cfg.InitialBackoff, w.cfg.MaxBackoff, attempt)) {
				w.st.failed.Add(1)
				return
			}
		}
		err := w.post(ctx, body)
		if err == nil {
			w.st.sent.Add(1)
			return
		}
		var perm *errPermanent
		if attempt >= w.cfg.MaxRetries || errors.As(err, &perm) || ctx.Err() != nil {
			w.st.failed.Add(1)
			w.cfg.Logger.Warn("webhook not delivered", "peer", ev.ID, "status", p.Status, "attempts", attempt+1, "err", err)
			return
		}
		w.cfg.Logger.Debug("webhook failed; retrying", "peer", ev.ID, "attempt", attempt+1, "err", err)
	}
}

func (w *Webhook) post(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return &errPermanent{fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hbmesh")
	resp, err := w.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("post %s: %w", w.cfg.URL, err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // allow connection reuse
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	err = fmt.Errorf("post %s: %s: %s", w.cfg.URL, resp.Status, bytes.TrimSpace(snippet))
	if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
		return &errPermanent{err}
	}
	return err
}
