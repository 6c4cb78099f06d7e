package events

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hbmesh/hbmesh/internal/cfgerr"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/wire"
)

// Defaults of [NATSConfig].
const (
	DefaultNATSQueueSize   = 1024
	DefaultPublishTimeout  = 5 * time.Second
	DefaultPublishRetries  = 3
	DefaultPublishBackoff  = 100 * time.Millisecond
	DefaultDrainTimeout    = 2 * time.Second
	DefaultStreamMaxAge    = 7 * 24 * time.Hour
	DefaultStreamMaxMsgs   = 1_000_000
	DefaultDuplicateWindow = 2 * time.Minute
	maxPublishBackoff      = 5 * time.Second
	streamLookupTimeout    = 10 * time.Second
	msgIDHexLen            = 32
)

// NATSConfig configures a [NATSPublisher].
type NATSConfig struct {
	// MonitorID is written as "monitor" into every payload so subscribers
	// can tell which monitor reported. Usually the monitor's ID. Default
	// "" (the field is left out).
	MonitorID string
	// Prefix is the subject prefix. Default wire.DefaultPrefix ("hb").
	Prefix string
	// Stream, when set, makes the publisher keep a durable log of events in
	// the JetStream stream of that name: Run creates the stream if it is
	// missing (subjects <prefix>.events.*.*, file storage, limits
	// retention, MaxAge 7d, MaxMsgs 1,000,000, discard old, a 2 minute
	// duplicate window, direct gets allowed) and uses an existing one as
	// it is. Events are then
	// published with JetStream acknowledgements and a Nats-Msg-Id derived
	// from the transition (see [MsgID]), so two monitors reporting the same
	// death within the duplicate window leave one record. Default "":
	// plain core NATS publishes, no log. Core publishes carry the same
	// Nats-Msg-Id header, so a stream another monitor created on these
	// subjects dedups them as well.
	Stream string
	// Replicas is the replica count of the stream when Run creates it, at
	// most 5; an existing stream keeps its own. Default 1.
	Replicas int
	// QueueSize bounds the events waiting to be published. Default 1024.
	QueueSize int
	// PublishTimeout bounds one JetStream publish, waiting for its
	// acknowledgement. Default 5s.
	PublishTimeout time.Duration
	// Retries is how many times a failed publish is retried. Default 3.
	// Set it negative for no retries.
	Retries int
	// RetryBackoff is the wait before the first retry; it doubles for each
	// further retry, up to 5s. Default 100ms.
	RetryBackoff time.Duration
	// DrainTimeout bounds how long Run keeps publishing, once its context
	// is done, the event in flight and those still queued. Default 2s.
	DrainTimeout time.Duration
	// Logger receives the publisher's logs. Default: discard.
	Logger *slog.Logger
}

// DefaultNATSConfig returns a NATSConfig with every default filled in.
func DefaultNATSConfig() NATSConfig {
	return NATSConfig{
		Prefix:         wire.DefaultPrefix,
		Replicas:       1,
		QueueSize:      DefaultNATSQueueSize,
		PublishTimeout: DefaultPublishTimeout,
		Retries:        DefaultPublishRetries,
		RetryBackoff:   DefaultPublishBackoff,
		DrainTimeout:   DefaultDrainTimeout,
	}
}

func (c *NATSConfig) fillDefaults() {
	d := DefaultNATSConfig()
	c.Prefix = cmp.Or(c.Prefix, d.Prefix)
	c.QueueSize = cmp.Or(c.QueueSize, d.QueueSize)
	c.Replicas = cmp.Or(c.Replicas, d.Replicas)
	c.PublishTimeout = cmp.Or(c.PublishTimeout, d.PublishTimeout)
	// Zero retries is the default; a negative count asks for none.
	c.Retries = max(cmp.Or(c.Retries, d.Retries), 0)
	c.RetryBackoff = cmp.Or(c.RetryBackoff, d.RetryBackoff)
	c.DrainTimeout = cmp.Or(c.DrainTimeout, d.DrainTimeout)
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
}

// Validate reports the first bad field by name and value.
func (c *NATSConfig) Validate() error {
	const invalid cfgerr.Of = "events publisher"
	if err := wire.ValidatePrefix(c.Prefix); err != nil {
		return invalid.Wrap("Prefix", nil, err)
	}
	if c.MonitorID != "" {
		if err := wire.ValidateID(c.MonitorID); err != nil {
			return invalid.Wrap("MonitorID", nil, err)
		}
	}
	if c.Stream != "" && !ValidName(c.Stream) {
		return invalid.Field("Stream", c.Stream, "may only use [A-Za-z0-9_-]")
	}
	switch {
	case c.Replicas < 1 || c.Replicas > 5:
		return invalid.Field("Replicas", c.Replicas, "must be within [1, 5]")
	case c.QueueSize < 1:
		return invalid.Field("QueueSize", c.QueueSize, "must be at least 1")
	case c.PublishTimeout < time.Millisecond:
		return invalid.Field("PublishTimeout", c.PublishTimeout, "must be at least 1ms")
	case c.Retries > 100:
		return invalid.Field("Retries", c.Retries, "must be at most 100")
	case c.RetryBackoff < time.Millisecond:
		return invalid.Field("RetryBackoff", c.RetryBackoff, "must be at least 1ms")
	case c.DrainTimeout < 0:
		return invalid.Field("DrainTimeout", c.DrainTimeout, "must not be negative")
	}
	return nil
}

// ValidName reports whether s is a usable JetStream stream, consumer or
// bucket name: 1 to 255 of [A-Za-z0-9_-].
func ValidName(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// NATSPublisher publishes a monitor's events on NATS, and optionally into
// a JetStream stream. Create it with [NewNATSPublisher].
type NATSPublisher struct {
	nc   *nats.Conn
	cfg  NATSConfig
	subj wire.Subjects
	q    chan monitor.Event
	st   counters
	drop dropLog
	runs atomic.Bool
}

// NewNATSPublisher checks cfg and returns a publisher that will use nc.
// Zero fields of cfg take their defaults. It does no I/O.
func NewNATSPublisher(nc *nats.Conn, cfg NATSConfig) (*NATSPublisher, error) {
	if nc == nil {
		return nil, cfgerr.Of("events publisher").Field("nc", nil, "is a nil *nats.Conn")
	}
	cfg.fillDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	subj, _ := wire.NewSubjects(cfg.Prefix)
	return &NATSPublisher{
		nc: nc, cfg: cfg, subj: subj,
		q:    make(chan monitor.Event, cfg.QueueSize),
		drop: dropLog{log: cfg.Logger, sink: "nats"},
	}, nil
}

// Handle queues ev for publishing. It never blocks; see the package doc.
func (p *NATSPublisher) Handle(ev monitor.Event) { enqueue(p.q, ev, &p.st, &p.drop) }

// Stats returns the publisher's counters.
func (p *NATSPublisher) Stats() Stats { return p.st.snapshot() }

// StreamConfig returns the configuration Run creates a missing stream
// with, for operators who prefer to create it themselves.
func StreamConfig(name string, subj wire.Subjects, replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        name,
		Replicas:    replicas,
		Description: "hbmesh peer transitions",
		Subjects:    []string{subj.Events()},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      DefaultStreamMaxAge,
		MaxMsgs:     DefaultStreamMaxMsgs,
		Duplicates:  DefaultDuplicateWindow,
		Discard:     jetstream.DiscardOld,
		// hbmesh notify asks what the stream held before an event.
		AllowDirect: true,
	}
}

// MsgID returns the Nats-Msg-Id of ev: the first 32 hex digits of the
// SHA-256 of the peer id, boot id, new state and last seq, and of
// ev.Repeat when it is not 0. Every monitor computes the same id for the
// same transition of the same peer, so when two monitors both report a
// death the stream's duplicate window keeps one record. Transitions that
// differ in any of these differ in id; Repeat keeps the second round of
// suspect → probe answered → alive at one seq from being taken for a
// duplicate of the first.
func MsgID(ev *monitor.Event) string {
	h := sha256.New()
	var buf [20]byte
	h.Write([]byte(ev.ID))
	h.Write([]byte{0})
	h.Write([]byte(ev.Boot))
	h.Write([]byte{0})
	h.Write([]byte(ev.State.String()))
	h.Write([]byte{0})
	h.Write(strconv.AppendUint(buf[:0], ev.Seq, 10))
	if ev.Repeat != 0 {
		h.Write([]byte{0})
		h.Write(strconv.AppendInt(buf[:0], int64(ev.Repeat), 10))
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0]))[:msgIDHexLen]
}

// Run ensures the stream exists when one is configured, then publishes
// queued events until ctx is done. It then keeps publishing what is
// still queued for up to DrainTimeout, counts the rest as dropped, and
// returns. It returns an error only if the stream could not be looked up
// or created. Run may be called once; a second call returns [ErrRunTwice].
func (p *NATSPublisher) Run(ctx context.Context) error {
	if !p.runs.CompareAndSwap(false, true) {
		return ErrRunTwice
	}
	var js jetstream.JetStream
	if p.cfg.Stream != "" {
		var err error
		if js, err = jetstream.New(p.nc); err != nil {
			return fmt.Errorf("events: jetstream: %w", err)
		}
		if err := p.ensureStream(ctx, js); err != nil {
			return err
		}
	}
	var buf []byte
	serve(ctx, p.q, p.cfg.DrainTimeout,
		func(ctx context.Context, ev *monitor.Event) { buf = p.publish(ctx, js, ev, buf) },
		func(ctx context.Context) {
			if js == nil {
				_ = p.nc.FlushWithContext(ctx)
			}
		},
		func(*monitor.Event) uint64 { return 1 }, &p.st, &p.drop)
	return nil
}

func (p *NATSPublisher) ensureStream(ctx context.Context, js jetstream.JetStream) error {
	ctx, cancel := context.WithTimeout(ctx, streamLookupTimeout)
	defer cancel()
	name := p.cfg.Stream
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, StreamConfig(name, p.subj, p.cfg.Replicas))
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			// Another monitor created it first, perhaps with other settings.
			s, err = js.Stream(ctx, name)
		} else if err == nil {
			p.cfg.Logger.Info("event stream created", "stream", name, "subjects", s.CachedInfo().Config.Subjects, "replicas", p.cfg.Replicas)
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("events: stream %q: %w", name, err)
	}
	p.cfg.Logger.Info("event stream exists; using it as is", "stream", name, "subjects", s.CachedInfo().Config.Subjects)
	return nil
}

// publish sends one event with retries, giving up when ctx is done.
func (p *NATSPublisher) publish(ctx context.Context, js jetstream.JetStream, ev *monitor.Event, buf []byte) []byte {
	subject := p.subj.Event(ev.State.String(), ev.ID)
	buf = ev.AppendJSON(buf[:0], p.cfg.MonitorID)
	// Core publishes carry the id too: a stream that captures the events
	// subjects dedups them even when it was created by another monitor
	// and this one publishes without --events-stream.
	msgID := MsgID(ev)
	dup := false
	attempts, err := p.st.retry(ctx, 1, retryPolicy{p.cfg.Retries, p.cfg.RetryBackoff, maxPublishBackoff},
		func() (err error) {
			dup, err = p.send(ctx, js, subject, msgID, buf)
			return err
		},
		func(err error) bool { return errors.Is(err, nats.ErrConnectionClosed) },
		func(attempt int, err error) {
			p.cfg.Logger.Debug("event publish failed; retrying", "subject", subject, "attempt", attempt, "err", err)
		})
	switch {
	case err != nil:
		p.cfg.Logger.Warn("event not published", "subject", subject, "peer", ev.ID, "state", ev.State.String(), "attempts", attempts, "err", err)
	case dup:
		p.st.duplicates.Add(1)
	}
	return buf
}

func (p *NATSPublisher) send(ctx context.Context, js jetstream.JetStream, subject, msgID string, data []byte) (dup bool, err error) {
	if js == nil {
		// PublishMsg copies data into the connection's buffer before it
		// returns, so the payload buffer can be reused.
		return false, p.nc.PublishMsg(&nats.Msg{Subject: subject, Data: data, Header: nats.Header{jetstream.MsgIDHeader: []string{msgID}}})
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.PublishTimeout)
	defer cancel()
	// The payload buffer is reused, and PublishMsg returns only after the
	// message is written, so no copy is needed.
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	ack, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(p.cfg.Stream))
	if err != nil {
		return false, err
	}
	return ack.Duplicate, nil
}
