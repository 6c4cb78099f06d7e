// Package pause waits out a duration unless a context ends first: the
// backoff between retries of an event delivery, and the phases of a
// benchmark.
package pause

import (
	"context"
	"time"
)

// For waits d, or until ctx is done, and then returns ctx.Err(). It
// returns nil once the whole of d has passed.
func For(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
