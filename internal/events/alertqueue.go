package events

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"sync"

	"github.com/hbmesh/hbmesh/internal/pause"
)

// alertQueue delivers an [Alertmanager] sink's alerts to one
// Alertmanager, one post at a time. It holds the newest alert of each
// peer only: an alert queued while an older one of its peer waits, or is
// being retried, takes its place. An outage therefore leaves one alert per
// peer waiting, not one per re-send, and what reaches the Alertmanager
// once it is back is the sink's latest word on each peer. A firing
// alert's endsAt is set as it is posted, validFor re-send intervals
// ahead: one that waited out an outage never arrives already expired,
// which Alertmanager would take for a resolution.
//
// After a failed post its alerts wait for the next, which comes after a
// backoff. An alert is given up once the receiver rejected it or after
// MaxRetries failed posts; a firing one is retried until the next
// re-send replaces it, one re-send interval at most. Counters count
// alerts: sent once accepted; failed when given up, or replaced by a
// newer alert after a failed post; dropped when never posted (a full
// queue, shutdown). An alert replaced before it was posted counts as
// nothing: its newer self is counted.
type alertQueue struct {
	p    *Poster
	cfg  *AlertmanagerConfig
	st   *counters
	drop *dropLog
	// wake says that pending has something; capacity 1.
	wake chan struct{}

	mu sync.Mutex
	// pending holds each peer's newest alert not yet posted, by peer id.
	// Guarded by mu.
	pending map[string]*queuedAlert
	// order numbers alerts as they are queued. Guarded by mu.
	order uint64
}

// queuedAlert is the newest alert about one peer, waiting for one
// Alertmanager.
type queuedAlert struct {
	alert  PostableAlert // a firing alert's EndsAt is set when posted
	firing bool
	order  uint64 // posts take the oldest first
	tries  int    // failed posts so far
}

func newAlertQueue(p *Poster, cfg *AlertmanagerConfig, st *counters, drop *dropLog) *alertQueue {
	return &alertQueue{p: p, cfg: cfg, st: st, drop: drop, wake: make(chan struct{}, 1), pending: make(map[string]*queuedAlert)}
}

// put queues alerts, each in place of any alert of its peer still
// waiting, at once: a resend is posted whole, in batches of maxBatch. An
// alert with EndsAt set is a resolution, the others fire. It never
// blocks; a full queue drops what it cannot hold, counted and logged.
func (q *alertQueue) put(alerts []PostableAlert) {
	dropped := 0
	q.mu.Lock()
	for _, a := range alerts {
		id := a.Labels[LabelPeer]
		old, waiting := q.pending[id]
		if !waiting && len(q.pending) >= q.cfg.QueueSize {
			dropped++
			continue
		}
		if waiting && old.tries > 0 {
			q.st.failed.Add(1)
		}
		q.order++
		q.pending[id] = &queuedAlert{alert: a, firing: a.EndsAt.IsZero(), order: q.order}
	}
	q.mu.Unlock()
	q.st.dropped.Add(uint64(dropped))
	for range dropped {
		q.drop.drop("queue full")
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take removes and returns up to n of the oldest alerts waiting.
func (q *alertQueue) take(n int) []*queuedAlert {
	q.mu.Lock()
	defer q.mu.Unlock()
	all := slices.SortedFunc(maps.Values(q.pending), func(a, b *queuedAlert) int { return cmp.Compare(a.order, b.order) })
	all = all[:min(n, len(all))]
	for _, e := range all {
		delete(q.pending, e.alert.Labels[LabelPeer])
	}
	return all
}

// run posts what is queued until ctx is done, and then, for up to
// DrainTimeout, what is in flight and still queued: see serve.
func (q *alertQueue) run(ctx context.Context) {
	dctx, stop := drainContext(ctx, q.cfg.DrainTimeout)
	defer stop()
	failures := 0 // posts failed in a row, for the backoff
	for dctx.Err() == nil {
		batch := q.take(maxBatch)
		if len(batch) == 0 {
			if ctx.Err() != nil {
				break
			}
			select {
			case <-ctx.Done():
			case <-q.wake:
			}
			continue
		}
		if slices.ContainsFunc(batch, func(e *queuedAlert) bool { return e.tries > 0 }) {
			q.st.retries.Add(1)
		}
		err := q.post(dctx, batch)
		if err == nil {
			failures = 0
			q.st.sent.Add(uint64(len(batch)))
			continue
		}
		failures++
		q.failed(dctx, batch, err)
		_ = pause.For(dctx, Backoff(q.cfg.InitialBackoff, q.cfg.MaxBackoff, failures)) // cut short by the drain's end
	}
	q.mu.Lock()
	for id, e := range q.pending {
		delete(q.pending, id)
		if e.tries > 0 {
			q.st.failed.Add(1)
		} else {
			q.st.dropped.Add(1)
			q.drop.drop("shutdown")
		}
	}
	q.mu.Unlock()
	q.p.closeIdle()
}

// post sends batch in one request, firing alerts valid from now on.
func (q *alertQueue) post(ctx context.Context, batch []*queuedAlert) error {
	endsAt := q.cfg.Clock.Now().UTC().Add(validFor * q.cfg.ResendInterval)
	alerts := make([]PostableAlert, len(batch))
	for i, e := range batch {
		alerts[i] = e.alert
		if e.firing {
			alerts[i].EndsAt = endsAt
		}
	}
	body, err := json.Marshal(alerts)
	if err != nil {
		return errors.Join(ErrRejected, err)
	}
	return q.p.Post(ctx, body)
}

// failed puts batch, whose post failed with err, back in the queue, but
// for the alerts a newer one replaced meanwhile and those given up.
func (q *alertQueue) failed(ctx context.Context, batch []*queuedAlert, err error) {
	final := errors.Is(err, ErrRejected) || ctx.Err() != nil
	given := 0
	q.mu.Lock()
	for _, e := range batch {
		e.tries++
		id := e.alert.Labels[LabelPeer]
		if _, newer := q.pending[id]; newer {
			q.st.failed.Add(1)
			continue
		}
		if final || e.tries > q.cfg.MaxRetries {
			q.st.failed.Add(1)
			given++
			continue
		}
		q.pending[id] = e
	}
	q.mu.Unlock()
	log := q.cfg.Logger
	if given > 0 {
		log.Warn("post not delivered", "sink", "alertmanager", "url", q.p.endpoint, "alerts", given, "err", err)
		return
	}
	log.Debug("post failed; retrying", "sink", "alertmanager", "url", q.p.endpoint, "alerts", len(batch), "err", err)
}
