package events

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hbmesh/hbmesh/internal/pause"
)

// ErrRunTwice is returned by a second call of the Run method of any sink
// in this package.
var ErrRunTwice = errors.New("events: Run called more than once")

// Stats are the counters every sink keeps, for metrics. They only grow.
type Stats struct {
	// Sent counts events delivered: published, hook exited 0, or webhook
	// answered 2xx.
	Sent uint64
	// Failed counts events given up on after their last attempt.
	Failed uint64
	// Dropped counts events never attempted: the queue was full, the event
	// was still queued at shutdown, or it could not be encoded.
	Dropped uint64
	// Retries counts attempts beyond the first.
	Retries uint64
	// Duplicates counts JetStream publishes the stream acknowledged as
	// duplicates (another monitor already recorded the transition), also
	// counted in Sent; and, in hbmesh notify's Stats, records acknowledged
	// without output because the stream had said the same before them.
	// The other sinks leave it 0.
	Duplicates uint64
}

type counters struct {
	sent, failed, dropped, retries, duplicates atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Sent: c.sent.Load(), Failed: c.failed.Load(), Dropped: c.dropped.Load(),
		Retries: c.retries.Load(), Duplicates: c.duplicates.Load(),
	}
}

// dropLogEvery bounds how often a sink logs dropped events.
const dropLogEvery = time.Second

// dropLog logs drops at most once per dropLogEvery, reporting how many were
// dropped since the previous line, so a flood of events cannot turn into a
// flood of logs (or slow Handle down with log I/O).
type dropLog struct {
	log  *slog.Logger
	sink string

	mu      sync.Mutex
	last    time.Time
	pending uint64
}

func (d *dropLog) drop(reason string) {
	d.mu.Lock()
	d.pending++
	now := time.Now()
	if !d.last.IsZero() && now.Sub(d.last) < dropLogEvery {
		d.mu.Unlock()
		return
	}
	n := d.pending
	d.pending = 0
	d.last = now
	d.mu.Unlock()
	d.log.Warn("events dropped", "sink", d.sink, "reason", reason, "count", n)
}

// enqueue tries to put ev on q without blocking.
func enqueue[T any](q chan T, v T, c *counters, d *dropLog) {
	select {
	case q <- v:
	default:
		c.dropped.Add(1)
		d.drop("queue full")
	}
}

// work runs fn on the values of q in n goroutines until ctx is done,
// preferring shutdown over taking another value, and returns once they
// have all returned. What is still queued stays in q.
func work[T any](ctx context.Context, q chan T, n int, fn func(*T)) {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				if ctx.Err() != nil {
					return
				}
				select {
				case v := <-q:
					fn(&v)
				case <-ctx.Done():
					return
				}
			}
		})
	}
	wg.Wait()
}

// serve runs fn on the values of q, one at a time, until ctx is done.
// Then, for up to drain, it lets the value in hand finish and runs fn on
// what is still queued, all with a context that ends at that deadline
// (so a retry's backoff or a request cannot outlast it), and finally
// after, if not nil, with the same context. Values still queued after the
// deadline are counted as dropped, as items says. It returns once all is
// done.
func serve[T any](ctx context.Context, q chan T, drain time.Duration, fn func(context.Context, *T), after func(context.Context), items func(*T) uint64, c *counters, d *dropLog) {
	dctx, stop := drainContext(ctx, drain)
	defer stop()
	work(ctx, q, 1, func(v *T) { fn(dctx, v) })
	for {
		select {
		case v := <-q:
			if dctx.Err() != nil {
				c.dropped.Add(items(&v))
				d.drop("shutdown")
				continue
			}
			fn(dctx, &v)
		default:
			if after != nil {
				after(dctx)
			}
			return
		}
	}
}

// drainContext returns a context that ends drain after ctx does: the
// deadline of a sink's drain at shutdown. stop ends it at once and waits
// for the goroutine that times it.
func drainContext(ctx context.Context, drain time.Duration) (dctx context.Context, stop func()) {
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-ctx.Done():
		case <-dctx.Done():
			return
		}
		t := time.NewTimer(drain)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-dctx.Done():
		}
	})
	return dctx, func() { cancel(); wg.Wait() }
}

// dropQueued empties q, counting what each value carries (items) as
// dropped at shutdown.
func dropQueued[T any](q chan T, items func(*T) uint64, c *counters, d *dropLog) {
	for {
		select {
		case v := <-q:
			c.dropped.Add(items(&v))
			d.drop("shutdown")
		default:
			return
		}
	}
}

// Backoff returns the wait before retry number n (1-based): initial
// doubled n-1 times, capped at maxWait. It is the one backoff of every
// retry hbmesh makes: the sinks' posts and publishes, and notify's
// redeliveries.
func Backoff(initial, maxWait time.Duration, n int) time.Duration {
	d := initial
	for i := 1; i < n && d < maxWait; i++ {
		d *= 2
	}
	return min(d, maxWait)
}

// retryPolicy is how a sink retries one delivery: at most retries times
// after the first attempt, waiting Backoff(initial, maxWait, n) before
// retry n.
type retryPolicy struct {
	retries          int
	initial, maxWait time.Duration
}

// retry makes up to 1+p.retries attempts to deliver what counts as items
// in c: try, and after a failure that may pass (not final), a backoff and
// try again, until it succeeds or ctx is done. It counts each retry in c,
// and the outcome: sent on success, failed otherwise. It returns the
// attempts made and, when the delivery failed on an attempt, that
// attempt's error, for the caller to log; nil on success and when ctx
// cut a backoff short. retrying, when not nil, hears each failure that is
// retried.
func (c *counters) retry(ctx context.Context, items uint64, p retryPolicy, try func() error, final func(error) bool, retrying func(attempt int, err error)) (int, error) {
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			c.retries.Add(1)
			if pause.For(ctx, Backoff(p.initial, p.maxWait, attempt)) != nil {
				c.failed.Add(items)
				return attempt, nil
			}
		}
		err := try()
		if err == nil {
			c.sent.Add(items)
			return attempt + 1, nil
		}
		if attempt >= p.retries || final(err) || ctx.Err() != nil {
			c.failed.Add(items)
			return attempt + 1, err
		}
		if retrying != nil {
			retrying(attempt+1, err)
		}
	}
}
