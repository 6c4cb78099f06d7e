package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	oklog "github.com/oklog/run"

	"github.com/hbmesh/hbmesh/internal/httpapi"
	"github.com/hbmesh/hbmesh/internal/notify"
)

// notifyCmd is `hbmesh notify`.
type notifyCmd struct {
	Stream     string        `required:"" placeholder:"NAME" env:"HBMESH_EVENTS_STREAM" help:"the JetStream stream of events the monitors keep (monitor --events-stream NAME); it must exist"`
	Mesh       prefixFlag    `embed:""`
	Consumer   string        `default:"${notify_consumer}" placeholder:"NAME" env:"HBMESH_NOTIFY_CONSUMER" help:"durable consumer name, one per output: NAME_exec, NAME_webhook, NAME_alertmanager; every notify with the same NAME shares them"`
	Hook       hookFlags     `embed:"" group:"events"`
	Webhook    webhookFlags  `embed:"" group:"events"`
	Alert      alertFlags    `embed:"" group:"alerting"`
	Hold       time.Duration `name:"alert-hold" group:"alerting" default:"${alert_hold}" min:"1m" max:"8760h" placeholder:"DURATION" env:"HBMESH_ALERT_HOLD" help:"a death's alert ends by itself this long after it, unless the peer's recovery resolves it first (nothing re-posts it)"`
	AckWait    time.Duration `name:"ack-wait" default:"${ack_wait}" min:"100ms" max:"1h" placeholder:"DURATION" env:"HBMESH_ACK_WAIT" help:"how long the server waits for word from a worker before it hands the worker's event to another; a worker says it is busy every quarter of it, and stops its output (kills the hook) when the server has not confirmed that for three quarters of it"`
	MaxDeliver int           `name:"max-deliver" default:"${max_deliver}" min:"1" max:"1000" placeholder:"N" env:"HBMESH_MAX_DELIVER" help:"deliver an event to a failing output at most N times, with backoff, then give it up (logged and counted)"`
	Metrics    string        `name:"metrics-addr" type:"httpaddr" placeholder:"ADDR" env:"HBMESH_METRICS_ADDR" help:"serve /metrics, /livez and /readyz (ready once the consumers are bound) on ADDR, e.g. 0.0.0.0:9465 for a Prometheus on another host; a bare PORT or :PORT binds 127.0.0.1 (default: off)"`
	Conn       connFlags     `embed:"" group:"conn"`
	Log        logFlags      `embed:"" group:"log"`
}

func (c *notifyCmd) Help() string {
	return `Hand each transition in the event stream (monitor --events-stream NAME) to a hook (--on-event), a webhook (--webhook) and Alertmanagers (--alertmanager), once per output however many monitors reported it and however many notify processes run: they share one durable consumer per output, and the stream keeps one record per transition. The hook runs as monitor --on-event runs it, with two more variables: $HBMESH_EVENT_ID, the same for every delivery of one transition, and $HBMESH_DELIVERY, 1 on the first. An event is acknowledged only once its output succeeded; a failed one (a hook that exits non-zero or outlives --on-event-timeout, say) is delivered again with backoff, up to --max-deliver times. A notify that dies loses nothing: its event goes to another after --ack-wait, and its hook dies with it. Events are handled one at a time per output, in order. --metrics-addr serves Prometheus /metrics (hbmesh_notify_events_total per output and result), /livez and /readyz.`
}

func (c *notifyCmd) examples() []string {
	return []string{
		"hbmesh notify --stream HBEVENTS --on-event 'page-oncall \"$HBMESH_PEER_ID\"' --on-event-states dead",
		"hbmesh notify --stream HBEVENTS --webhook https://tickets.example/hook --webhook-header Authorization=@/run/secrets/hook-auth",
		"hbmesh notify --stream HBEVENTS --alertmanager http://am:9093 --alert-label cluster=prod --alert-label severity=page --metrics-addr 0.0.0.0:9465",
		"hbmesh notify --stream HBEVENTS --creds /etc/hbmesh/notify.creds --inbox-prefix _INBOX_notify1 --on-event 'page-oncall \"$HBMESH_PEER_ID\"'",
	}
}

func (c *notifyCmd) Run(ctx context.Context, e *env) error {
	if c.Hook.OnEvent == "" && c.Webhook.Webhook == "" && len(c.Alert.Alertmanager) == 0 {
		return usagef("no output: give --on-event, --webhook or --alertmanager")
	}
	if err := c.Hook.validate(e); err != nil {
		return err
	}
	if e.given("alert-hold") && len(c.Alert.Alertmanager) == 0 {
		return usagef("%s needs --alertmanager", e.source("alert-hold"))
	}
	if err := c.Webhook.validate(e); err != nil {
		return err
	}
	if err := c.Alert.validate(e, c.Webhook.Webhook != ""); err != nil {
		return err
	}
	webhookHeader, err := headers(e, "webhook-header", c.Webhook.Header)
	if err != nil {
		return err
	}
	alertHeader, err := headers(e, "alert-header", c.Alert.Header)
	if err != nil {
		return err
	}
	cfg := notify.DefaultConfig(c.Stream)
	cfg.Prefix, cfg.Consumer = c.Mesh.Prefix, c.Consumer
	cfg.Command, cfg.States, cfg.HookTimeout = c.Hook.OnEvent, c.Hook.States, c.Hook.Timeout
	cfg.WebhookURL, cfg.WebhookHeader = c.Webhook.Webhook, webhookHeader
	cfg.AlertmanagerURLs, cfg.AlertLabels, cfg.AlertHeader, cfg.AlertHold = c.Alert.Alertmanager, c.Alert.Label, alertHeader, c.Hold
	cfg.ExternalURL = c.Alert.ExternalURL
	cfg.AckWait, cfg.MaxDeliver = c.AckWait, c.MaxDeliver
	if err := cfg.Validate(); err != nil {
		return err
	}
	c.Conn.jetStream = true // the event stream's consumer
	if err := c.Conn.validate(e); err != nil {
		return err
	}
	log := c.Log.logger(e.stderr)
	cfg.Logger = log.With("cmd", "notify")
	// A bad or busy address fails before anything connects.
	var ln net.Listener
	if c.Metrics != "" {
		if ln, err = net.Listen("tcp", c.Metrics); err != nil {
			return fmt.Errorf("--metrics-addr: %w", err)
		}
		defer ln.Close() // harmless once Serve has closed it
	}
	// Without its replies notify can neither find the stream nor take
	// events.
	c.Conn.refused = c.Conn.inboxRefused
	cn, err := c.Conn.dial(ctx, "hbmesh notify", log.With("cmd", "notify"))
	if err != nil {
		return err
	}
	defer cn.close()
	n, err := notify.New(cn.Conn, cfg)
	if err != nil {
		return usagef("%v", err)
	}
	// notify stops when ctx is done, the connection fails for good, or
	// the metrics server fails.
	rctx, cancel := context.WithCancel(cn.Context())
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	var g oklog.Group
	g.Add(func() error { return n.Run(rctx) }, func(error) { cancel() })
	if ln != nil {
		m, err := httpapi.NewMetrics(httpapi.MetricsConfig{Collector: n.Collector(buildVersion().Version), Ready: n.Ready, Logger: log.With("cmd", "http")})
		if err != nil {
			return err
		}
		g.Add(func() error { return m.Serve(rctx, ln) }, func(error) { cancel() })
	}
	err = g.Run()
	if ferr := cn.failure(); ferr != nil {
		return ferr
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
