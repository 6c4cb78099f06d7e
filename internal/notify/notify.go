package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hbmesh/hbmesh/internal/cfgerr"
	"github.com/hbmesh/hbmesh/internal/events"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/wire"
)

// ErrRunTwice is returned by a second call of [Notifier.Run].
var ErrRunTwice = errors.New("notify: Run called more than once")

const (
	// fetchWait bounds one wait for the next event; shutdown does not
	// wait for it.
	fetchWait = 30 * time.Second
	// ackTimeout bounds the wait for the server to confirm an ack.
	ackTimeout = 5 * time.Second
	// setupTimeout bounds looking up the stream and creating a consumer.
	setupTimeout = 10 * time.Second
)

// Outputs, by the name their consumer and counters carry.
const (
	OutputExec         = "exec"
	OutputWebhook      = "webhook"
	OutputAlertmanager = "alertmanager"
)

// Notifier hands the events of a JetStream stream to hooks, webhooks and
// Alertmanagers, each event once per output however many Notifiers run.
// Create it with [New].
type Notifier struct {
	nc   *nats.Conn
	cfg  Config
	subj wire.Subjects
	outs []*output
	runs atomic.Bool
	// bound is set once Run has bound every output's consumer; stopped
	// once Run returns.
	bound, stopped atomic.Bool
	// direct is whether the stream allows direct gets, which tell what
	// it held before an event (set by Run). lookupFailed says a lookup
	// failed, which is logged once.
	direct       bool
	lookupFailed atomic.Bool
}

// output is one destination with its durable consumer and counters.
type output struct {
	name string
	// may reports whether ev can be for this output, from the event
	// alone; others are acked at once, without asking the stream.
	may func(ev *monitor.Event) bool
	// wants, when not nil, decides for an event that may be for the
	// output, given what the stream said about its peer before it (p;
	// nil when the stream could not say).
	wants func(ev *monitor.Event, p prior) bool
	// do delivers ev, one attempt.
	do func(ctx context.Context, d *delivery) error

	sent, failed, retries, dropped, duplicates atomic.Uint64
}

// delivery is one event in hand.
type delivery struct {
	msg     jetstream.Msg
	prior   prior // what the stream said about the peer before it, if known
	ev      monitor.Event
	monitor string // who reported it
	id      string // its Nats-Msg-Id
	n       uint64 // which delivery this is, from 1
	seq     uint64 // its stream sequence
}

// New checks cfg and returns a Notifier that will use nc. Zero fields of
// cfg take their defaults. It does no I/O.
func New(nc *nats.Conn, cfg Config) (*Notifier, error) {
	if nc == nil {
		return nil, cfgerr.Of("notify").Field("nats.Conn", nil, "is nil")
	}
	cfg.fillDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Notifier{nc: nc, cfg: cfg, subj: wire.MustSubjects(cfg.Prefix)}
	deadOrBack := func(ev *monitor.Event, p prior) bool { return ev.State == monitor.StateDead || back(ev, p) }
	notSuspect := func(ev *monitor.Event) bool { return ev.State != monitor.StateSuspect }
	if cfg.Command != "" {
		var states [8]bool
		for _, s := range cfg.States {
			states[s] = true
		}
		hook := &events.Hook{Command: cfg.Command, Timeout: cfg.HookTimeout, DieWithCaller: true}
		n.outs = append(n.outs, &output{
			name: OutputExec,
			may: func(ev *monitor.Event) bool {
				return len(cfg.States) == 0 || int(ev.State) < len(states) && states[ev.State]
			},
			do: func(ctx context.Context, d *delivery) error { return n.runHook(ctx, hook, d) },
		})
	}
	if cfg.WebhookURL != "" {
		p, err := events.NewPoster(cfg.WebhookURL, cfg.httpConfig(cfg.WebhookHeader))
		if err != nil {
			return nil, err
		}
		n.outs = append(n.outs, &output{
			name: OutputWebhook, may: notSuspect, wants: deadOrBack,
			do: func(ctx context.Context, d *delivery) error { return n.postWebhook(ctx, p, d) },
		})
	}
	if len(cfg.AlertmanagerURLs) > 0 {
		var ps []*events.Poster
		for _, u := range cfg.AlertmanagerURLs {
			p, err := events.NewPoster(events.AlertmanagerAlertsURL(u), cfg.httpConfig(cfg.AlertHeader))
			if err != nil {
				return nil, err
			}
			ps = append(ps, p)
		}
		n.outs = append(n.outs, &output{
			name: OutputAlertmanager, may: notSuspect, wants: deadOrBack,
			do: func(ctx context.Context, d *delivery) error { return n.postAlert(ctx, ps, d) },
		})
	}
	return n, nil
}

// Stats returns the counters of each configured output, by name
// ([OutputExec], [OutputWebhook], [OutputAlertmanager]): Sent counts
// events delivered (and acknowledged), Failed those given up on after
// MaxDeliver deliveries or refused by the receiver, Retries the
// deliveries after a failure, Dropped the events that could not be
// decoded, and Duplicates the records acknowledged without output because
// the stream had said the same before them (see [Config.Stream]). Events
// an output does not want (other states) are not counted.
func (n *Notifier) Stats() map[string]events.Stats {
	m := make(map[string]events.Stats, len(n.outs))
	for _, o := range n.outs {
		m[o.name] = events.Stats{Sent: o.sent.Load(), Failed: o.failed.Load(), Retries: o.retries.Load(), Dropped: o.dropped.Load(), Duplicates: o.duplicates.Load()}
	}
	return m
}

// Ready returns nil while n takes events: [Notifier.Run] has bound every
// output's durable consumer and not returned, and the NATS connection is
// up. Otherwise it says why.
func (n *Notifier) Ready() error {
	switch {
	case n.stopped.Load():
		return errors.New("notify: stopped")
	case !n.bound.Load():
		return errors.New("notify: consumers not bound")
	case !n.nc.IsConnected():
		return errors.New("notify: NATS connection down")
	}
	return nil
}

// ConsumerName returns the durable consumer that output uses.
func (n *Notifier) ConsumerName(output string) string { return n.cfg.Consumer + "_" + output }

// Run creates or updates each output's durable consumer on the stream,
// then handles events until ctx is done. An event in hand then is
// finished (a hook within its timeout) and acknowledged before Run
// returns. It returns an error if the stream or a consumer cannot be set
// up, and nil after shutdown. Run may be called once; a second call
// returns [ErrRunTwice].
func (n *Notifier) Run(ctx context.Context) error {
	if !n.runs.CompareAndSwap(false, true) {
		return ErrRunTwice
	}
	defer func() { n.stopped.Store(true); n.bound.Store(false) }()
	js, err := jetstream.New(n.nc)
	if err != nil {
		return fmt.Errorf("notify: jetstream: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	stream, err := js.Stream(sctx, n.cfg.Stream)
	if err != nil {
		return fmt.Errorf("notify: stream %q: %w", n.cfg.Stream, err)
	}
	consumers := make([]jetstream.Consumer, len(n.outs))
	for i, o := range n.outs {
		c, err := stream.CreateOrUpdateConsumer(sctx, n.consumerConfig(o.name))
		if err != nil {
			return fmt.Errorf("notify: consumer %q: %w", n.ConsumerName(o.name), err)
		}
		consumers[i] = c
	}
	cancel()
	n.direct = stream.CachedInfo().Config.AllowDirect
	n.bound.Store(true)
	n.cfg.Logger.Info("notify started", "stream", n.cfg.Stream, "consumer", n.cfg.Consumer, "outputs", len(n.outs))
	if !n.direct {
		n.cfg.Logger.Warn("the event stream does not allow direct gets: a transition a monitor reports late is handled again", "stream", n.cfg.Stream)
	}
	var wg sync.WaitGroup
	for i, o := range n.outs {
		wg.Go(func() { n.consume(ctx, consumers[i], o) })
	}
	wg.Wait()
	return nil
}

// consumerConfig is the durable consumer of output: explicit acks, the
// events subjects, new events only when it is first created.
func (n *Notifier) consumerConfig(output string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       n.ConsumerName(output),
		Description:   "hbmesh notify: " + output,
		FilterSubject: n.subj.Events(),
		DeliverPolicy: jetstream.DeliverNewPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       n.cfg.AckWait,
		MaxDeliver:    n.cfg.MaxDeliver,
		MaxAckPending: n.cfg.MaxAckPending,
	}
}

// consume takes one event at a time from c, so that no event waits in
// this process while another is handled (it would time out here and be
// handled twice), until ctx is done.
func (n *Notifier) consume(ctx context.Context, c jetstream.Consumer, o *output) {
	log := n.cfg.Logger.With("output", o.name)
	for ctx.Err() == nil {
		fctx, cancel := context.WithTimeout(ctx, fetchWait)
		msg, err := c.Next(jetstream.FetchContext(fctx))
		received := time.Now()
		cancel()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) {
				log.Warn("events not fetched; retrying", "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
			continue
		}
		n.handle(ctx, msg, received, o, log)
	}
}

// handle delivers one event to o and settles it with the server: ack on
// success or when the stream said the same before (noNews), a delayed
// redelivery on failure, termination once it has been delivered
// MaxDeliver times or was refused for good.
func (n *Notifier) handle(ctx context.Context, msg jetstream.Msg, received time.Time, o *output, log *slog.Logger) {
	meta, err := msg.Metadata()
	if err != nil {
		log.Warn("event without JetStream metadata; dropped", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		o.dropped.Add(1)
		return
	}
	ev, mon, err := monitor.DecodeEvent(msg.Data())
	if err != nil {
		// Counted and logged, never retried: the bytes will not change.
		log.Warn("event not decoded; dropped", "subject", msg.Subject(), "seq", meta.Sequence.Stream, "err", err)
		_ = msg.TermWithReason("hbmesh notify: not an hbmesh event")
		o.dropped.Add(1)
		return
	}
	if !o.may(&ev) {
		n.ack(msg, log)
		return
	}
	d := &delivery{msg: msg, ev: ev, monitor: mon, id: msg.Headers().Get(jetstream.MsgIDHeader), n: meta.NumDelivered, seq: meta.Sequence.Stream}
	attrs := []any{"peer", ev.ID, "state", ev.State.String(), "event_id", d.id, "delivery", d.n}
	// A delivery in progress finishes even during shutdown: aborting it
	// half-way would hand a maybe-done side effect to another worker. It
	// stops only when the event is about to go to another worker anyway.
	octx, release := n.hold(context.WithoutCancel(ctx), msg, received)
	if n.direct {
		p, err := n.before(octx, d)
		switch {
		case err != nil:
			if !n.lookupFailed.Swap(true) {
				log.Warn("event stream lookup failed: a transition a monitor reports late is handled again", append(attrs, "err", err)...)
			}
		case noNews(&d.ev, p):
			release()
			o.duplicates.Add(1)
			log.Info("event skipped: the stream said it before", append(attrs, "monitor", mon, "seq", ev.Seq)...)
			n.ack(msg, log, attrs...)
			return
		}
		d.prior = p
	}
	if o.wants != nil && !o.wants(&d.ev, d.prior) {
		release()
		n.ack(msg, log)
		return
	}
	err = o.do(octx, d)
	lost := release()
	switch {
	case err == nil:
		o.sent.Add(1)
		n.ack(msg, log, attrs...)
	case lost:
		// Neither ack nor nak: the server no longer hears this worker,
		// and hands the event to another once AckWait is over.
		o.retries.Add(1)
		log.Warn("event output stopped: the server may hand the event to another worker", append(attrs, "ack_wait", n.cfg.AckWait, "err", err)...)
	case errors.Is(err, events.ErrRejected) || d.n >= uint64(n.cfg.MaxDeliver):
		o.failed.Add(1)
		log.Warn("event given up", append(attrs, "err", err)...)
		_ = msg.TermWithReason("hbmesh notify: " + o.name + " failed")
	default:
		o.retries.Add(1)
		delay := events.Backoff(n.cfg.InitialBackoff, n.cfg.MaxBackoff, int(min(d.n, uint64(n.cfg.MaxDeliver))))
		log.Warn("event output failed; redelivering", append(attrs, "in", delay, "err", err)...)
		_ = msg.NakWithDelay(delay)
	}
}

// ackProgress is the body of a word to the server that an event is still
// in hand (what jetstream.Msg.InProgress sends, unconfirmed).
var ackProgress = []byte("+WPI")

// hold keeps msg, received at received, in this worker's hands while the
// output works on it, until release is called. Every AckWait/4 it tells
// the server the event is still in hand, and waits for the server to
// confirm it heard. A worker that died says nothing more, so its event
// goes to another after AckWait. A worker that lives but cannot reach the
// server (a partition, a server that does not answer) loses the event the
// same way while its output may still be at work: so once 3/4 of AckWait
// has passed since the server last confirmed, the returned context is
// cancelled, which kills a hook's process group and aborts a request,
// before the server can hand the event to another worker. release stops
// the keeping and reports whether that happened.
func (n *Notifier) hold(ctx context.Context, msg jetstream.Msg, received time.Time) (context.Context, func() (lost bool)) {
	wait := n.cfg.AckWait
	limit := wait * 3 / 4
	octx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	var lost atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		last := received // when the last word the server confirmed was sent
		expire := time.NewTimer(limit)
		defer expire.Stop()
		tick := time.NewTicker(wait / 4)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-expire.C:
				lost.Store(true)
				cancel(errLeaseLost)
				return
			case <-tick.C:
			}
			// Bounded by the expiry, so that it is noticed on time.
			rctx, rcancel := context.WithTimeout(octx, min(wait/8, time.Until(last.Add(limit))))
			sent := time.Now()
			_, err := n.nc.RequestWithContext(rctx, msg.Reply(), ackProgress)
			rcancel()
			if err == nil {
				last = sent
				expire.Reset(time.Until(last.Add(limit)))
			}
		}
	})
	return octx, func() bool {
		close(done)
		cancel(nil) // a word in flight need not be waited for
		wg.Wait()
		return lost.Load()
	}
}

// errLeaseLost is why an output is stopped when the server may hand its
// event to another worker.
var errLeaseLost = errors.New("the server may hand the event to another worker")

// ack acknowledges msg and waits for the server to confirm it: only then
// can no other worker get the event again.
func (n *Notifier) ack(msg jetstream.Msg, log *slog.Logger, attrs ...any) {
	ctx, cancel := context.WithTimeout(context.Background(), ackTimeout)
	defer cancel()
	if err := msg.DoubleAck(ctx); err != nil {
		log.Warn("event ack not confirmed; it may be handled again", append(attrs, "err", err)...)
	}
}

func (n *Notifier) runHook(ctx context.Context, h *events.Hook, d *delivery) error {
	extra := []string{"HBMESH_EVENT_ID=" + d.id, "HBMESH_DELIVERY=" + strconv.FormatUint(d.n, 10)}
	stderr, err := h.Run(ctx, &d.ev, d.monitor, extra)
	if err != nil && stderr != "" {
		return fmt.Errorf("%w (stderr: %s)", err, stderr)
	}
	return err
}

// started returns when d's peer died: the time of the dead event, for a
// dead event, and otherwise of the last dead event the stream holds for
// the peer before d (the event's own time when there is none, or the
// stream could not say).
func started(d *delivery) time.Time {
	if d.ev.State == monitor.StateDead {
		return d.ev.Time
	}
	if dead := d.prior.lastIn(monitor.StateDead); dead != nil && !dead.Time.After(d.ev.Time) {
		return dead.Time
	}
	return d.ev.Time
}

func (n *Notifier) postWebhook(ctx context.Context, p *events.Poster, d *delivery) error {
	body, err := json.Marshal(events.WebhookPayload(&d.ev, started(d), n.cfg.Prefix, d.monitor, n.cfg.ExternalURL))
	if err != nil {
		return fmt.Errorf("%w: encode: %w", events.ErrRejected, err)
	}
	return p.Post(ctx, body)
}

// postAlert posts d's alert to every Alertmanager at once, and succeeds
// only when each of them accepted it: the members of an Alertmanager
// cluster share notifications, not alerts, so a member without the alert
// neither notifies it if the others fail, nor resolves it. A member that
// refused it sends the event round again, to all of them (the others
// take it again as the same alert), until every one has it or the event
// is given up.
func (n *Notifier) postAlert(ctx context.Context, ps []*events.Poster, d *delivery) error {
	a := events.EventAlert(&d.ev, started(d), n.cfg.AlertHold, n.cfg.Prefix, n.cfg.AlertLabels, d.monitor, n.cfg.ExternalURL)
	body, err := json.Marshal([]events.PostableAlert{a})
	if err != nil {
		return fmt.Errorf("%w: encode: %w", events.ErrRejected, err)
	}
	errs := make([]error, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() { errs[i] = p.Post(ctx, body) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
