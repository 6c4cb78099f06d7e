package events

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hbmesh/hbmesh/internal/cfgerr"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/wire"
)

// Receiver is the receiver field of every webhook payload.
const Receiver = "hbmesh"

// WebhookConfig configures a [Webhook].
type WebhookConfig struct {
	// URL receives the POSTs. Required; http or https.
	URL string
	// MonitorID names the reporting monitor in the alerts' annotations
	// (never in their labels). Default "".
	MonitorID string
	// Prefix is the "prefix" label. Default wire.DefaultPrefix ("hb").
	Prefix string
	// ExternalURL is the monitor's dashboard as its users reach it. It is
	// sent as externalURL, and each alert's generatorURL links to its
	// peer there. Default "".
	ExternalURL string
	// HTTPConfig is the queue, timeout, retries and headers of delivery.
	HTTPConfig
	// Logger receives the webhook's logs. Default: discard.
	Logger *slog.Logger
}

// DefaultWebhookConfig returns a WebhookConfig posting to url with every
// default filled in.
func DefaultWebhookConfig(url string) WebhookConfig {
	return WebhookConfig{URL: url, Prefix: wire.DefaultPrefix, HTTPConfig: DefaultHTTPConfig()}
}

func (c *WebhookConfig) fillDefaults() {
	c.Prefix = cmp.Or(c.Prefix, wire.DefaultPrefix)
	c.HTTPConfig.fillDefaults()
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
}

// Validate reports the first bad field by name and value.
func (c *WebhookConfig) Validate() error {
	const invalid cfgerr.Of = "webhook"
	if err := checkURL(invalid, "URL", c.URL); err != nil {
		return err
	}
	if err := wire.ValidatePrefix(c.Prefix); err != nil {
		return invalid.Wrap("Prefix", nil, err)
	}
	if c.ExternalURL != "" {
		if err := checkURL(invalid, "ExternalURL", c.ExternalURL); err != nil {
			return err
		}
	}
	return c.HTTPConfig.validate(invalid)
}

// Webhook posts notifications about dead peers in the format Alertmanager
// sends to its webhook receivers (payload version 4), for a receiver
// written against that format. Alertmanager itself does not accept it:
// use [Alertmanager] to post alerts to one. Create it with [NewWebhook].
//
// A peer going dead sends a "firing" alert. The same peer then leaving
// the dead state (a beat, a probe answer, a restart or a goodbye) sends
// "resolved" with endsAt set. Other events send nothing. Each POST carries
// one alert, labelled alertname=HbmeshPeerDead, peer, host and prefix;
// the reporting monitor is an annotation, so every monitor sends the same
// labels and the same fingerprint for one death, and the resolved
// notification matches the firing one. Deliveries happen one at a time,
// in event order, with retries and exponential backoff.
type Webhook struct {
	cfg  WebhookConfig
	out  *outbox
	st   counters
	drop dropLog
	runs atomic.Bool

	mu sync.Mutex
	// firing maps a dead peer to when its alert started, for the
	// resolved notification's startsAt. A peer that never comes back
	// (forgotten after the retention) sends no event that would take it
	// out, so it holds at most maxFiring peers, dropping the oldest
	// deaths first. Guarded by mu.
	firing map[string]time.Time
}

// maxFiring bounds Webhook.firing. A recovery from a death it dropped is
// still resolved, with its own time as startsAt.
const maxFiring = 10_000

// NewWebhook checks cfg and returns the webhook. Zero fields of cfg take
// their defaults. It does no I/O.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	cfg.fillDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p, err := NewPoster(cfg.URL, cfg.HTTPConfig)
	if err != nil {
		return nil, err
	}
	w := &Webhook{
		cfg:    cfg,
		drop:   dropLog{log: cfg.Logger, sink: "webhook"},
		firing: make(map[string]time.Time),
	}
	w.out = newOutbox("webhook", p, &w.cfg.HTTPConfig, &w.st, &w.drop, cfg.Logger)
	return w, nil
}

// Handle queues the notification ev fires or resolves, if any. It never
// blocks; see the package doc.
func (w *Webhook) Handle(ev monitor.Event) {
	if ev.State != monitor.StateDead && ev.Prev != monitor.StateDead {
		return
	}
	w.mu.Lock()
	p := w.payload(&ev)
	w.mu.Unlock()
	body, err := json.Marshal(p)
	if err != nil {
		w.st.dropped.Add(1)
		w.cfg.Logger.Error("alert not encoded", "peer", ev.ID, "err", err)
		return
	}
	w.out.put(post{body: body, items: 1, attrs: []any{"peer", ev.ID, "status", p.Status}})
}

// Stats returns the webhook's counters.
func (w *Webhook) Stats() Stats { return w.st.snapshot() }

// Run delivers queued notifications until ctx is done, and then, for up
// to DrainTimeout, the one in flight and those still queued (a firing
// notification has no endsAt: a resolution lost at shutdown would leave
// it firing). What the deadline cuts short is counted as failed, what it
// leaves queued as dropped. Run returns nil once its goroutines have
// exited. Run may be called once; a second call returns [ErrRunTwice].
func (w *Webhook) Run(ctx context.Context) error {
	if !w.runs.CompareAndSwap(false, true) {
		return ErrRunTwice
	}
	w.out.run(ctx)
	return nil
}

// Payload is the body Alertmanager posts to a webhook receiver (version 4).
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
	start := ev.Time.UTC()
	if ev.State != monitor.StateDead {
		if t, ok := w.firing[ev.ID]; ok {
			start = t
		}
		delete(w.firing, ev.ID)
	} else {
		if _, ok := w.firing[ev.ID]; !ok && len(w.firing) >= maxFiring {
			w.dropOldest()
		}
		w.firing[ev.ID] = start
	}
	return WebhookPayload(ev, start, w.cfg.Prefix, w.cfg.MonitorID, w.cfg.ExternalURL)
}

// dropOldest drops the older half of the firing set, so that the work of
// a full set is done once per maxFiring/2 deaths.
func (w *Webhook) dropOldest() {
	starts := slices.SortedFunc(maps.Values(w.firing), time.Time.Compare)
	cut := starts[len(starts)/2]
	for id, t := range w.firing {
		if !t.After(cut) {
			delete(w.firing, id)
		}
	}
}

// WebhookPayload returns the notification about ev, which must be a dead
// event or one leaving the dead state: "firing" for the first, "resolved"
// for the second. start is when the peer's alert started, the time of the
// dead event (for a dead event, ev.Time). The labels are those of every
// hbmesh alert; monitorID, when not "", is an annotation, and externalURL
// the dashboard that generatorURL links into.
func WebhookPayload(ev *monitor.Event, start time.Time, prefix, monitorID, externalURL string) *Payload {
	labels := alertLabels(prefix, ev.ID, ev.Host, nil)
	a := Alert{
		Labels:       labels,
		StartsAt:     start.UTC(),
		GeneratorURL: peerURL(externalURL, ev.ID),
		Fingerprint:  fingerprint(labels),
	}
	if ev.State == monitor.StateDead {
		a.Status = StatusFiring
		d := deadFromEvent(ev, monitorID)
		a.Annotations = d.annotations()
	} else {
		a.Status = StatusResolved
		a.EndsAt = ev.Time.UTC()
		a.Annotations = resolvedAnnotations(ev.ID, ev.Host, ev.State, ev.Reason, monitorID)
	}
	group := map[string]string{LabelAlertName: AlertName, LabelPeer: ev.ID}
	return &Payload{
		Version:           "4",
		GroupKey:          fmt.Sprintf("{}:{alertname=%q, peer=%q}", AlertName, ev.ID),
		Status:            a.Status,
		Receiver:          Receiver,
		GroupLabels:       group,
		CommonLabels:      labels,
		CommonAnnotations: a.Annotations,
		ExternalURL:       externalURL,
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
