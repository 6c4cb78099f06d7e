package node

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hbmesh/hbmesh/wire"
)

// goodbyeFlushTimeout bounds how long Run waits, on the way out, for the
// server to acknowledge the goodbye beat and the probe unsubscribe.
const goodbyeFlushTimeout = 2 * time.Second

// ErrConnClosed is returned by [Node.Run] when the connection is closed,
// before Run or while the node runs; the node cannot recover from that on
// its own. It wraps [nats.ErrConnectionClosed], so errors.Is matches
// either.
var ErrConnClosed = fmt.Errorf("node: %w", nats.ErrConnectionClosed)

// ErrRunTwice is returned by a second call of [Node.Run] on one Node,
// whether or not the first has returned.
var ErrRunTwice = errors.New("node: Run called more than once")

// Node publishes the beats of one process. Build it with [New] and drive
// it with [Node.Run].
type Node struct {
	nc                  *nats.Conn
	cfg                 Config
	beatSubj, probeSubj string
	log                 *slog.Logger

	started atomic.Bool
	seq     atomic.Uint64

	// Owned by Run's goroutine. sent is when the last beat went out.
	beat wire.Beat
	buf  []byte
	sent time.Time

	// probeMu serialises probe replies and guards probe state; once
	// probesStopped is set no reply is sent.
	probeMu       sync.Mutex
	probeBeat     wire.Beat
	probeBuf      []byte
	probesStopped bool

	published, dropped, skipped, failed atomic.Uint64

	// announced: the connection's name announces this node (for the
	// crash fast path).
	announced bool
}

// Stats counts what a Node did with its beats.
type Stats struct {
	Published uint64 // beats handed to the connection, goodbye included
	Dropped   uint64 // beats withheld by Config.DropBeat
	Skipped   uint64 // beats not sent because the connection was not CONNECTED
	Failed    uint64 // beats whose Publish returned an error
}

// New checks cfg, filling zero fields with their defaults (see [Config]),
// and returns a Node that will beat on nc. It does no network I/O.
func New(nc *nats.Conn, cfg Config) (*Node, error) {
	if nc == nil {
		return nil, invalid.Field("nc", nil, "is a nil *nats.Conn")
	}
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Boot == "" {
		var b [8]byte
		_, _ = crand.Read(b[:]) // crypto/rand.Read never fails
		cfg.Boot = base64.RawURLEncoding.EncodeToString(b[:])
	}
	announced, err := checkConnName(&nc.Opts, &cfg)
	if err != nil {
		return nil, err
	}
	cfg.Labels = maps.Clone(cfg.Labels)
	subj, err := wire.NewSubjects(cfg.Prefix)
	if err != nil { // unreachable: Validate checked the prefix
		return nil, fmt.Errorf("node: %w", err)
	}
	n := &Node{
		nc:        nc,
		cfg:       cfg,
		beatSubj:  subj.Beat(cfg.ID),
		probeSubj: subj.Probe(cfg.ID),
		log:       cfg.Logger.With("peer", cfg.ID),
		announced: announced,
	}
	n.beat = wire.Beat{
		V: wire.Version, ID: cfg.ID, Host: cfg.Host, PID: cfg.PID, Boot: cfg.Boot,
		IntervalMS: cfg.Interval.Milliseconds(), Version: cfg.Version, Labels: cfg.Labels,
	}
	n.probeBeat = n.beat
	n.buf = make([]byte, 0, wire.MaxPayload)
	n.probeBuf = make([]byte, 0, wire.MaxPayload)
	return n, nil
}

// ID returns the node id.
func (n *Node) ID() string { return n.cfg.ID }

// Boot returns the boot id of this incarnation.
func (n *Node) Boot() string { return n.cfg.Boot }

// Seq returns the seq of the node's latest beat, 0 before the first. Beats
// withheld by DropBeat or skipped while disconnected still take a seq, so
// it can run ahead of what monitors have received. It is safe to call
// concurrently with Run.
func (n *Node) Seq() uint64 { return n.seq.Load() }

// Stats returns the node's counters. It is safe to call concurrently with
// Run.
func (n *Node) Stats() Stats {
	return Stats{
		Published: n.published.Load(),
		Dropped:   n.dropped.Load(),
		Skipped:   n.skipped.Load(),
		Failed:    n.failed.Load(),
	}
}

// Run answers probes and publishes beats until ctx is done, then publishes
// a goodbye beat and returns nil once the probe handler has stopped and the
// goodbye has been flushed (or the flush timed out). Close the connection
// only after Run has returned, or the goodbye may be lost and monitors
// report the node dead rather than left. Run returns nil at once, having
// published nothing, if ctx is already done; [ErrConnClosed] if the
// connection is closed before or while it runs; another error if the
// probe subscription fails. Run may be called only once per Node; a
// second call returns [ErrRunTwice]. It starts no goroutines of its own.
func (n *Node) Run(ctx context.Context) error {
	if !n.started.CompareAndSwap(false, true) {
		return ErrRunTwice
	}
	if ctx.Err() != nil {
		return nil // stopped before it started: nothing to announce or take back
	}
	if n.nc.IsClosed() {
		return ErrConnClosed
	}
	// Register before subscribing so a close that races with startup is
	// still seen.
	status := n.nc.StatusChanged(nats.CONNECTED, nats.CLOSED)
	defer n.nc.RemoveStatusListener(status)

	// The first beat's seq is taken before subscribing so that a probe
	// never reports seq 0, which the protocol forbids.
	first := n.seq.Add(1)
	sub, err := n.nc.Subscribe(n.probeSubj, n.onProbe)
	if err != nil {
		return fmt.Errorf("node: subscribe %q: %w", n.probeSubj, err)
	}
	defer n.stopProbes(sub) // a no-op after the goodbye path has run it

	if !n.announced {
		n.log.Info("the connection's name does not announce this node (wire.NodeConn), so monitors judge it by beats and probes alone, without the crash fast path", "name", n.nc.Opts.Name)
	}

	ticker := n.cfg.Clock.NewTicker(n.nextWait())
	defer ticker.Stop()
	n.publish(first, wire.StatusAlive)

	for {
		select {
		case <-ctx.Done():
			n.stopProbes(sub)
			n.goodbye()
			return nil
		case <-ticker.C():
			ticker.Reset(n.nextWait())
			n.publish(n.seq.Add(1), wire.StatusAlive)
		case s := <-status:
			if s == nats.CLOSED || n.nc.IsClosed() {
				return ErrConnClosed
			}
			// Back from a reconnect: announce ourselves now rather than
			// up to an interval later, and restart the period from here;
			// but no sooner than monitors accept a beat after the last
			// one, which a reconnect at once after it would be.
			if wait := n.sent.Add(wire.MinBeatGap(n.cfg.Interval)).Sub(n.cfg.Clock.Now()); wait > 0 {
				n.log.Debug("reconnected, beating shortly", "subject", n.beatSubj, "in", wait)
				ticker.Reset(wait)
				continue
			}
			n.log.Debug("reconnected, beating now", "subject", n.beatSubj)
			ticker.Reset(n.nextWait())
			n.publish(n.seq.Add(1), wire.StatusAlive)
		}
	}
}

// nextWait returns Interval scaled by a random factor in [1-Jitter, 1+Jitter].
func (n *Node) nextWait() time.Duration {
	u := (2*rand.Float64() - 1) * n.cfg.Jitter
	return time.Duration(float64(n.cfg.Interval) * (1 + u))
}

// publish sends the beat with seq, unless DropBeat vetoes it or the
// connection is down. Publishing while reconnecting would land in nats.go's
// reconnect buffer and be replayed as a burst of stale beats later, so such
// beats are skipped instead.
// goodbye sends the leaving beat and waits for the server to have it. If it
// cannot, monitors will call the node dead rather than left, which the
// operator stopping it should know.
func (n *Node) goodbye() {
	if !n.publish(n.seq.Add(1), wire.StatusLeaving) {
		n.log.Warn("goodbye not sent: not connected to NATS; monitors will report this node dead, not left", "subject", n.beatSubj)
		return
	}
	if err := n.nc.FlushTimeout(goodbyeFlushTimeout); err != nil {
		n.log.Warn("goodbye not confirmed by the server; monitors may report this node dead, not left", "subject", n.beatSubj, "err", err)
	}
}

// publish sends one beat and reports whether it went out.
func (n *Node) publish(seq uint64, status string) bool {
	if status == wire.StatusAlive && n.cfg.DropBeat != nil && n.cfg.DropBeat(seq) {
		n.dropped.Add(1)
		return false
	}
	if st := n.nc.Status(); st != nats.CONNECTED {
		n.skipped.Add(1)
		n.log.Debug("not connected, beat skipped", "subject", n.beatSubj, "seq", seq, "status", st.String())
		return false
	}
	now := n.cfg.Clock.Now()
	n.beat.Seq = seq
	n.beat.TS = now.UTC()
	n.beat.Status = status
	n.buf = wire.AppendBeat(n.buf[:0], &n.beat)
	if err := n.nc.Publish(n.beatSubj, n.buf); err != nil {
		n.failed.Add(1)
		n.log.Error("publish beat", "subject", n.beatSubj, "err", err)
		return false
	}
	n.sent = now
	n.published.Add(1)
	return true
}

// onProbe answers a probe with the node's latest beat. nats.go calls it
// from the subscription's own goroutine.
func (n *Node) onProbe(m *nats.Msg) {
	n.probeMu.Lock()
	defer n.probeMu.Unlock()
	if n.probesStopped {
		return
	}
	n.probeBeat.Seq = n.seq.Load()
	n.probeBeat.TS = n.cfg.Clock.Now().UTC()
	n.probeBeat.Status = wire.StatusAlive
	n.probeBuf = wire.AppendBeat(n.probeBuf[:0], &n.probeBeat)
	if err := m.Respond(n.probeBuf); err != nil {
		n.log.Debug("answer probe", "subject", m.Subject, "err", err)
	}
}

// stopProbes unsubscribes and waits for a running probe handler to finish;
// any handler that starts later returns without replying.
func (n *Node) stopProbes(sub *nats.Subscription) {
	if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrBadSubscription) && !errors.Is(err, nats.ErrConnectionClosed) {
		n.log.Debug("unsubscribe probes", "subject", n.probeSubj, "err", err)
	}
	n.probeMu.Lock()
	n.probesStopped = true
	n.probeMu.Unlock()
}
