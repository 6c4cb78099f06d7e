package notify

import (
	"cmp"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/hbmesh/hbmesh/internal/cfgerr"
	"github.com/hbmesh/hbmesh/internal/events"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/wire"
)

// Defaults of [Config].
const (
	DefaultConsumer       = "hbmesh_notify"
	DefaultHookTimeout    = 10 * time.Second
	DefaultHTTPTimeout    = 10 * time.Second
	DefaultAckWait        = 30 * time.Second
	DefaultMaxDeliver     = 10
	DefaultInitialBackoff = time.Second
	DefaultMaxBackoff     = 5 * time.Minute
	DefaultMaxAckPending  = 1
	DefaultAlertHold      = 24 * time.Hour
)

// Config configures a [Notifier]. At least one output (Command, WebhookURL
// or AlertmanagerURLs) is required.
type Config struct {
	// Stream is the JetStream stream of events, the one monitors keep with
	// --events-stream. Required; it must exist. It should allow direct
	// gets, as a monitor creates it: they tell a transition a monitor
	// reports late from news; without them every record is acted on.
	Stream string
	// Prefix is the subject prefix of the events. Default
	// wire.DefaultPrefix ("hb").
	Prefix string
	// Consumer names the durable consumers, one per output:
	// <Consumer>_exec, <Consumer>_webhook and <Consumer>_alertmanager.
	// Every Notifier with the same Consumer shares them, so each event is
	// handled by one of them, once per output. [A-Za-z0-9_-], at most 200
	// bytes. Default "hbmesh_notify".
	Consumer string

	// Command is run with /bin/sh -c for each event, as monitor
	// --on-event runs it, plus HBMESH_EVENT_ID (the event's Nats-Msg-Id,
	// the same for every delivery and every monitor that reported it) and
	// HBMESH_DELIVERY (1 on the first delivery). Its whole process group
	// dies with the Notifier. Default "": no hook.
	Command string
	// States selects the events that run Command by their new state.
	// Default: empty, meaning every event.
	States []monitor.State
	// HookTimeout bounds one run of Command; on expiry its process group
	// is killed and the run failed. Default 10s.
	HookTimeout time.Duration

	// WebhookURL receives the notification of each death and recovery,
	// in the JSON Alertmanager posts to its webhook receivers (as monitor
	// --webhook sends it). Default "": none.
	WebhookURL string
	// AlertmanagerURLs are Alertmanagers, by base URL, that each death is
	// posted to as an alert (API v2), firing until AlertHold has passed
	// or the peer's recovery resolves it: every member of an
	// Alertmanager cluster, which share notifications but not alerts. An
	// event counts as delivered once every one of them accepted it; until
	// then it is delivered again, to all of them. Default: none.
	AlertmanagerURLs []string
	// AlertLabels are added to every Alertmanager alert, as for
	// [events.AlertmanagerConfig.Labels]. Default: none.
	AlertLabels map[string]string
	// AlertHold is how long a firing alert posted to Alertmanager lasts
	// unless resolved: its endsAt. Nothing re-sends it, so it should
	// exceed how long a peer may stay dead; the monitors' --retention
	// (24h) is when they forget a dead peer. Default 24h, at least 1m.
	AlertHold time.Duration
	// ExternalURL is a monitor's dashboard as users reach it; alerts'
	// generatorURL links to their peer there. Default "".
	ExternalURL string
	// WebhookHeader is added to every webhook request, AlertHeader to
	// every Alertmanager request. Their values are never logged. Default:
	// none.
	WebhookHeader, AlertHeader http.Header
	// HTTPTimeout bounds one webhook or Alertmanager request. Default
	// 10s.
	HTTPTimeout time.Duration
	// Client sends the requests. Default: a new http.Client.
	Client *http.Client

	// AckWait is how long the server waits for a worker's word on an
	// event before giving it to another worker. A worker handling an
	// event tells the server every AckWait/4 that it is still at it, so
	// only a worker that died, froze or lost the server loses its event
	// to another; one that lost the server stops its output once the
	// server has confirmed nothing for 3/4 of AckWait.
	// Default 30s, at least 100ms.
	AckWait time.Duration
	// MaxDeliver is how many times an event is delivered to an output
	// before it is given up on (counted as failed and logged). Default 10.
	MaxDeliver int
	// InitialBackoff is the delay before an event whose output failed is
	// delivered again; it doubles with each delivery, up to MaxBackoff.
	// Defaults 1s and 5m.
	InitialBackoff, MaxBackoff time.Duration
	// MaxAckPending is how many events of one output may be in hand at
	// once, across every worker. The default, 1, handles them one at a
	// time in stream order, so a peer's recovery never overtakes its
	// death; more handles them in parallel, in no set order. Default 1.
	MaxAckPending int

	// Logger receives the notifier's logs. Default: discard.
	Logger *slog.Logger
}

// DefaultConfig returns a Config reading stream, with every default filled
// in and no output.
func DefaultConfig(stream string) Config {
	return Config{
		Stream:         stream,
		Prefix:         wire.DefaultPrefix,
		Consumer:       DefaultConsumer,
		HookTimeout:    DefaultHookTimeout,
		HTTPTimeout:    DefaultHTTPTimeout,
		AlertHold:      DefaultAlertHold,
		AckWait:        DefaultAckWait,
		MaxDeliver:     DefaultMaxDeliver,
		InitialBackoff: DefaultInitialBackoff,
		MaxBackoff:     DefaultMaxBackoff,
		MaxAckPending:  DefaultMaxAckPending,
	}
}

func (c *Config) fillDefaults() {
	d := DefaultConfig("")
	c.Prefix = cmp.Or(c.Prefix, d.Prefix)
	c.Consumer = cmp.Or(c.Consumer, d.Consumer)
	c.HookTimeout = cmp.Or(c.HookTimeout, d.HookTimeout)
	c.HTTPTimeout = cmp.Or(c.HTTPTimeout, d.HTTPTimeout)
	c.AlertHold = cmp.Or(c.AlertHold, d.AlertHold)
	c.AckWait = cmp.Or(c.AckWait, d.AckWait)
	c.InitialBackoff = cmp.Or(c.InitialBackoff, d.InitialBackoff)
	c.MaxBackoff = cmp.Or(c.MaxBackoff, d.MaxBackoff)
	c.MaxDeliver = cmp.Or(c.MaxDeliver, d.MaxDeliver)
	c.MaxAckPending = cmp.Or(c.MaxAckPending, d.MaxAckPending)
	c.Client = cmp.Or(c.Client, &http.Client{})
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
}

// Validate reports the first bad field by name and value. It never shows
// a header value or more of a URL than its scheme and host.
func (c *Config) Validate() error {
	const invalid cfgerr.Of = "notify"
	if !events.ValidName(c.Stream) {
		return invalid.Field("Stream", c.Stream, "must be set, of [A-Za-z0-9_-]")
	}
	if !events.ValidName(c.Consumer) || len(c.Consumer) > 200 {
		return invalid.Field("Consumer", c.Consumer, "must be set, of [A-Za-z0-9_-], at most 200 bytes")
	}
	if err := wire.ValidatePrefix(c.Prefix); err != nil {
		return invalid.Wrap("Prefix", nil, err)
	}
	if c.Command == "" && c.WebhookURL == "" && len(c.AlertmanagerURLs) == 0 {
		return invalid.Field("Command, WebhookURL and AlertmanagerURLs", nil, "are all empty: no output")
	}
	if c.Command == "" && len(c.States) > 0 {
		return invalid.Field("States", c.States, "apply to Command, which is not set")
	}
	for _, s := range c.States {
		if s < monitor.StateAlive || s > monitor.StateLeft {
			return invalid.Field("States", s, "is not alive, suspect, dead or left")
		}
	}
	if c.WebhookURL != "" {
		if err := events.ValidateURL(c.WebhookURL); err != nil {
			return invalid.Wrap("WebhookURL", nil, err)
		}
	}
	for i, u := range c.AlertmanagerURLs {
		if err := events.ValidateAlertmanagerURL(u); err != nil {
			return invalid.Wrap(fmt.Sprintf("AlertmanagerURLs[%d]", i), nil, err)
		}
	}
	if err := events.ValidateAlertLabels(c.AlertLabels); err != nil {
		return invalid.Wrap("AlertLabels", nil, err)
	}
	if c.ExternalURL != "" {
		if err := events.ValidateURL(c.ExternalURL); err != nil {
			return invalid.Wrap("ExternalURL", nil, err)
		}
	}
	if err := events.ValidateHeader(c.WebhookHeader); err != nil {
		return invalid.Wrap("WebhookHeader", nil, err)
	}
	if err := events.ValidateHeader(c.AlertHeader); err != nil {
		return invalid.Wrap("AlertHeader", nil, err)
	}
	switch {
	case c.HookTimeout < time.Millisecond:
		return invalid.Field("HookTimeout", c.HookTimeout, "must be at least 1ms")
	case c.HTTPTimeout < time.Millisecond:
		return invalid.Field("HTTPTimeout", c.HTTPTimeout, "must be at least 1ms")
	case c.AlertHold < time.Minute:
		return invalid.Field("AlertHold", c.AlertHold, "must be at least 1m")
	case c.AckWait < 100*time.Millisecond:
		return invalid.Field("AckWait", c.AckWait, "must be at least 100ms")
	case c.MaxDeliver < 1 || c.MaxDeliver > 1000:
		return invalid.Field("MaxDeliver", c.MaxDeliver, "must be within [1, 1000]")
	case c.InitialBackoff < time.Millisecond:
		return invalid.Field("InitialBackoff", c.InitialBackoff, "must be at least 1ms")
	case c.MaxBackoff < c.InitialBackoff:
		return invalid.Field("MaxBackoff", c.MaxBackoff, fmt.Sprintf("must be at least InitialBackoff (%v)", c.InitialBackoff))
	case c.MaxAckPending < 1 || c.MaxAckPending > 10_000:
		return invalid.Field("MaxAckPending", c.MaxAckPending, "must be within [1, 10000]")
	}
	return nil
}

// httpConfig is how a request with header is sent.
func (c *Config) httpConfig(header http.Header) events.HTTPConfig {
	h := events.DefaultHTTPConfig()
	h.Timeout, h.Header, h.Client = c.HTTPTimeout, header, c.Client
	return h
}
