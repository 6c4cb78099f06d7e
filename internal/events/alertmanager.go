package events

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hbmesh/hbmesh/clock"
	"github.com/hbmesh/hbmesh/internal/cfgerr"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/wire"
)

// Defaults of [AlertmanagerConfig].
const (
	// DefaultResendInterval is well inside Alertmanager's default
	// resolve_timeout (5m), as Prometheus's own resend delay (1m) is.
	DefaultResendInterval = time.Minute
	DefaultMaxAlerts      = 1000
	// validFor is how many resend intervals a firing alert's endsAt lies
	// ahead, as Prometheus sets it (4 × its resend delay): a monitor that
	// stops sending lets its alerts resolve by themselves after that long,
	// unless another monitor keeps them firing.
	validFor = 4
	// maxBatch bounds the alerts of one POST.
	maxBatch = 64
	// syncPoll is how often the sink checks whether its monitor is ready
	// for the first full sync (after which restored dead peers fire).
	syncPoll = 100 * time.Millisecond
)

// PeerSource is the monitor whose dead peers an [Alertmanager] alerts on.
// *monitor.Monitor satisfies it. Every method must be safe for concurrent
// use.
type PeerSource interface {
	Peer(id string) (monitor.PeerInfo, bool)
	TopPeers(limit int, states ...monitor.State) ([]monitor.PeerInfo, int)
	Ready() error
}

// AlertmanagerConfig configures an [Alertmanager].
type AlertmanagerConfig struct {
	// URLs are the Alertmanagers, by base URL (http://am:9093, plus the
	// path prefix of one behind --web.route-prefix). Every alert is posted
	// to each of them at <URL>/api/v2/alerts, as Prometheus does with the
	// members of an Alertmanager cluster. At least one is required.
	URLs []string
	// Prefix is the "prefix" label. Default wire.DefaultPrefix ("hb").
	Prefix string
	// Labels are added to every alert, e.g. cluster=prod. Checked by
	// [ValidateAlertLabels]. Default: none.
	Labels map[string]string
	// MonitorID names the reporting monitor in the annotations (never in
	// the labels). Default "".
	MonitorID string
	// ExternalURL is the monitor's dashboard as its users reach it; each
	// alert's generatorURL links to its peer there. Default "": none.
	ExternalURL string
	// ResendInterval is how often every firing alert is sent again, with
	// endsAt 4 intervals ahead. Default 1m, at least 10ms.
	ResendInterval time.Duration
	// MaxAlerts bounds the dead peers alerted on at once. Beyond it
	// further dead peers raise nothing until one of them recovers (logged
	// once per resend interval). Default 1000.
	MaxAlerts int
	// HTTPConfig is the queue (per Alertmanager), timeout, retries and
	// headers of delivery. QueueSize bounds the peers whose alert waits
	// for an Alertmanager: each peer's newest alert only waits (see
	// [Alertmanager]). A firing alert is retried until the next resend
	// replaces it, one ResendInterval at most.
	HTTPConfig
	// Clock is the time source. Default clock.Real().
	Clock clock.Clock
	// Logger receives the sink's logs. Default: discard.
	Logger *slog.Logger
}

// DefaultAlertmanagerConfig returns an AlertmanagerConfig posting to the
// Alertmanagers at urls, with every default filled in.
func DefaultAlertmanagerConfig(urls ...string) AlertmanagerConfig {
	return AlertmanagerConfig{
		URLs:           urls,
		Prefix:         wire.DefaultPrefix,
		ResendInterval: DefaultResendInterval,
		MaxAlerts:      DefaultMaxAlerts,
		HTTPConfig:     DefaultHTTPConfig(),
	}
}

func (c *AlertmanagerConfig) fillDefaults() {
	d := DefaultAlertmanagerConfig()
	c.Prefix = cmp.Or(c.Prefix, d.Prefix)
	c.ResendInterval = cmp.Or(c.ResendInterval, d.ResendInterval)
	c.MaxAlerts = cmp.Or(c.MaxAlerts, d.MaxAlerts)
	c.HTTPConfig.fillDefaults()
	c.Clock = cmp.Or(c.Clock, clock.Real())
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
}

// Validate reports the first bad field by name and value.
func (c *AlertmanagerConfig) Validate() error {
	const invalid cfgerr.Of = "alertmanager"
	if len(c.URLs) == 0 {
		return invalid.Field("URLs", nil, "needs at least one Alertmanager")
	}
	seen := map[string]bool{}
	for i, u := range c.URLs {
		field := fmt.Sprintf("URLs[%d]", i)
		if err := ValidateAlertmanagerURL(u); err != nil {
			return invalid.Wrap(field, nil, err)
		}
		if seen[u] {
			return invalid.Field(field, endpoint(u), "is listed twice")
		}
		seen[u] = true
	}
	if err := wire.ValidatePrefix(c.Prefix); err != nil {
		return invalid.Wrap("Prefix", nil, err)
	}
	if err := ValidateAlertLabels(c.Labels); err != nil {
		return invalid.Wrap("Labels", nil, err)
	}
	if c.ExternalURL != "" {
		if err := checkURL(invalid, "ExternalURL", c.ExternalURL); err != nil {
			return err
		}
	}
	switch {
	case c.ResendInterval < 10*time.Millisecond:
		return invalid.Field("ResendInterval", c.ResendInterval, "must be at least 10ms")
	case c.MaxAlerts < 1 || c.MaxAlerts > 1_000_000:
		return invalid.Field("MaxAlerts", c.MaxAlerts, "must be within [1, 1000000]")
	}
	return c.HTTPConfig.validate(invalid)
}

// Alertmanager posts alerts about a monitor's dead peers to Alertmanager's
// API v2, the way Prometheus posts its alerts. Create it with
// [NewAlertmanager].
//
// Each dead peer is one alert, labelled alertname=HbmeshPeerDead, peer,
// host, prefix and the configured static labels; nothing in the labels
// says which monitor reports it, so N monitors send the same alert and
// Alertmanager merges them into one notification. A peer's alert is posted
// when its dead event arrives, and again every ResendInterval while it
// stays dead, with endsAt 4 intervals ahead: Alertmanager keeps it firing
// while any monitor keeps sending, and resolves it by itself once none
// does (every monitor of the peer's mesh stopped). When the peer beats
// again, leaves or is forgotten, the alert is posted with endsAt set to
// that moment, which resolves it, even when this run never fired it (the
// run before a restart may have). Suspect peers raise nothing.
//
// The dead peers are read from the monitor itself: events only say when
// to look. Every resend is a full sync with the monitor's table, so a
// monitor restarted with restart memory fires again for its restored dead
// peers (the first sync runs as soon as the monitor is ready), and an
// event dropped on a full queue is made good at the next resend.
//
// Posts go to every Alertmanager independently: each has its own bounded
// queue and retries with backoff, so a slow or dead one neither delays the
// others nor ever blocks detection. A queue holds each peer's newest
// alert only, a newer one replacing it, and a firing alert gets its
// endsAt when it is posted: after an outage each Alertmanager gets one
// alert per peer, current and valid for 4 intervals, never a backlog of
// superseded ones whose endsAt has passed (which Alertmanager would
// take for resolutions). The counters count alerts, once per
// Alertmanager: Sent those accepted, Failed those given up on (or
// replaced by a newer one after a failed post), Dropped those never
// attempted (and dead events dropped on a full queue).
type Alertmanager struct {
	src  PeerSource
	cfg  AlertmanagerConfig
	out  []*alertQueue
	st   counters
	drop dropLog
	runs atomic.Bool
	// changed carries the ids of peers whose dead state changed, from
	// Handle to the loop.
	changed chan string

	// firing maps each peer alerted on to its alert as last sent. Only
	// the loop goroutine touches it.
	firing map[string]*PostableAlert
	// overflowSaid is whether the warning that dead peers beyond
	// MaxAlerts raise no alert was logged since the last sync, which says
	// it again: a mass death is one line per resend, not one per peer.
	// Only the loop goroutine touches it.
	overflowSaid bool
}

// NewAlertmanager checks cfg and returns the sink, reading dead peers from
// src. Zero fields of cfg take their defaults. It does no I/O.
func NewAlertmanager(src PeerSource, cfg AlertmanagerConfig) (*Alertmanager, error) {
	if src == nil {
		return nil, cfgerr.Of("alertmanager").Field("PeerSource", nil, "is nil")
	}
	cfg.fillDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Alertmanager{
		src:     src,
		cfg:     cfg,
		drop:    dropLog{log: cfg.Logger, sink: "alertmanager"},
		changed: make(chan string, cfg.QueueSize),
		firing:  make(map[string]*PostableAlert),
	}
	for _, u := range cfg.URLs {
		p, err := NewPoster(AlertmanagerAlertsURL(u), cfg.HTTPConfig)
		if err != nil {
			return nil, err
		}
		a.out = append(a.out, newAlertQueue(p, &a.cfg, &a.st, &a.drop))
	}
	return a, nil
}

// Handle tells the sink about ev when it makes a peer dead or takes it out
// of the dead state. It never blocks; see the package doc.
func (a *Alertmanager) Handle(ev monitor.Event) {
	if ev.State != monitor.StateDead && ev.Prev != monitor.StateDead {
		return
	}
	enqueue(a.changed, ev.ID, &a.st, &a.drop)
}

// Stats returns the sink's counters.
func (a *Alertmanager) Stats() Stats { return a.st.snapshot() }

// Run posts alerts until ctx is done, and then, for up to DrainTimeout,
// the posts in flight and those still queued; what the deadline cuts
// short is counted as failed, what it leaves queued as dropped. Nothing
// is resolved at shutdown: the alerts of a monitor that stops expire at
// their endsAt unless another monitor keeps them firing. Run
// returns nil once its goroutines have exited. Run may be called once; a
// second call returns [ErrRunTwice].
func (a *Alertmanager) Run(ctx context.Context) error {
	if !a.runs.CompareAndSwap(false, true) {
		return ErrRunTwice
	}
	var wg sync.WaitGroup
	for _, o := range a.out {
		wg.Go(func() { o.run(ctx) })
	}
	wg.Go(func() { a.loop(ctx) })
	wg.Wait()
	return nil
}

func (a *Alertmanager) loop(ctx context.Context) {
	tick := a.cfg.Clock.NewTicker(min(syncPoll, a.cfg.ResendInterval))
	defer tick.Stop()
	start := a.cfg.Clock.Now()
	synced := false
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-a.changed:
			a.check(id)
		case <-tick.C():
			if !synced {
				// Until the monitor runs, its table lacks the peers
				// restart memory restores: the first sync waits for it
				// to be ready, or for one resend interval at most (a
				// monitor impaired from its start still resends).
				if a.src.Ready() != nil && a.cfg.Clock.Now().Sub(start) < a.cfg.ResendInterval {
					continue
				}
				synced = true
				tick.Reset(a.cfg.ResendInterval)
			}
			a.sync()
		}
	}
}

// check brings peer id's alert in line with the monitor's view of it.
func (a *Alertmanager) check(id string) {
	p, known := a.src.Peer(id)
	fired, firing := a.firing[id]
	now := a.cfg.Clock.Now().UTC()
	switch {
	case known && p.State == monitor.StateDead && !firing:
		if len(a.firing) >= a.cfg.MaxAlerts {
			if !a.overflowSaid {
				a.overflowSaid = true
				a.cfg.Logger.Warn("dead peers beyond MaxAlerts raise no alert", "peer", id, "max_alerts", a.cfg.MaxAlerts)
			}
			return
		}
		a.send(*a.fire(&p, now))
	case firing && (!known || p.State != monitor.StateDead):
		// The moment it left the dead state, when the monitor still
		// knows the peer and that moment follows the alert's start.
		end := now
		if known && p.Since.After(fired.StartsAt) && p.Since.Before(now) {
			end = p.Since.UTC()
		}
		a.send(a.resolve(fired, &p, known, end))
	case known && p.State != monitor.StateDead:
		// Back before this run fired its alert: the run before a restart
		// may have, and its alert would fire on until its endsAt. An
		// Alertmanager that never had the alert keeps the resolution
		// quietly.
		end := now
		if !p.Since.IsZero() && p.Since.Before(now) {
			end = p.Since.UTC()
		}
		al := PostableAlert{Labels: alertLabels(a.cfg.Prefix, p.ID, p.Host, a.cfg.Labels), StartsAt: end, GeneratorURL: peerURL(a.cfg.ExternalURL, p.ID)}
		a.send(a.resolve(&al, &p, true, end))
	}
}

// sync sends every dead peer's alert again, and resolves those whose peer
// is no longer dead (or no longer known) without an event having said so.
func (a *Alertmanager) sync() {
	now := a.cfg.Clock.Now().UTC()
	dead, matched := a.src.TopPeers(a.cfg.MaxAlerts, monitor.StateDead)
	byID := make(map[string]*monitor.PeerInfo, len(dead))
	for i := range dead {
		byID[dead[i].ID] = &dead[i]
	}
	var batch []PostableAlert
	for id, fired := range a.firing {
		p, ok := byID[id]
		if !ok && matched > len(dead) {
			// Past the cap, TopPeers leaves out some dead peers: keep
			// those already alerted on rather than swap alerts around.
			if info, known := a.src.Peer(id); known && info.State == monitor.StateDead {
				p = &info
			}
		}
		if p == nil {
			info, known := a.src.Peer(id)
			batch = append(batch, a.resolve(fired, &info, known, now))
			continue
		}
		batch = append(batch, *a.fire(p, now))
		delete(byID, id) // handled
	}
	for i := range dead {
		if byID[dead[i].ID] == nil || len(a.firing) >= a.cfg.MaxAlerts {
			continue
		}
		batch = append(batch, *a.fire(&dead[i], now))
	}
	a.overflowSaid = matched > len(a.firing)
	if a.overflowSaid {
		a.cfg.Logger.Warn("dead peers beyond MaxAlerts raise no alert", "dead", matched, "alerted", len(a.firing), "max_alerts", a.cfg.MaxAlerts)
	}
	a.send(batch...)
}

// fire records and returns the firing alert of dead peer p. Its endsAt
// is set when it is posted.
func (a *Alertmanager) fire(p *monitor.PeerInfo, now time.Time) *PostableAlert {
	al, ok := a.firing[p.ID]
	if !ok {
		al = &PostableAlert{
			Labels:       alertLabels(a.cfg.Prefix, p.ID, p.Host, a.cfg.Labels),
			StartsAt:     p.Since.UTC(),
			GeneratorURL: peerURL(a.cfg.ExternalURL, p.ID),
		}
		if al.StartsAt.IsZero() || al.StartsAt.After(now) {
			al.StartsAt = now
		}
		a.firing[p.ID] = al
	}
	d := deadFromInfo(p, a.cfg.MonitorID)
	al.Annotations = d.annotations()
	return al
}

// resolve forgets fired and returns it resolved at end; p is the peer as
// the monitor has it now, if known.
func (a *Alertmanager) resolve(fired *PostableAlert, p *monitor.PeerInfo, known bool, end time.Time) PostableAlert {
	id, host := fired.Labels[LabelPeer], fired.Labels[LabelHost]
	delete(a.firing, id)
	r := *fired
	state := monitor.StateUnknown
	if known {
		state = p.State
	}
	r.Annotations = resolvedAnnotations(id, host, state, "", a.cfg.MonitorID)
	r.EndsAt = end
	return r
}

// send queues alerts for every Alertmanager: those with endsAt set as
// resolutions, the others as firing.
func (a *Alertmanager) send(alerts ...PostableAlert) {
	for _, q := range a.out {
		q.put(alerts)
	}
}
