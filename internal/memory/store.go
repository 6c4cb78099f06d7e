package memory

import (
	"context"
	"errors"
	"time"

	"github.com/hbmesh/hbmesh/monitor"
)

// ErrRunTwice is returned by a second call of [Saver.Run] on one Saver.
var ErrRunTwice = errors.New("memory: Run called more than once")

// Store keeps peer snapshots across monitor restarts. Implementations are
// safe for concurrent use.
type Store interface {
	// Load returns the saved peers; none (and no error) if nothing was
	// ever saved.
	Load(ctx context.Context) ([]monitor.PeerInfo, error)
	// Save replaces the saved peers with peers.
	Save(ctx context.Context, peers []monitor.PeerInfo) error
	// Close releases the store. It does not delete what was saved.
	Close()
}

// record is one remembered peer as stored, in a file or a KV value: the
// peer's JSON (monitor.PeerJSON), measured at the time of the save.
// Monitors before it was adopted wrote interval_ns instead of interval_ms,
// left out last_beat when zero, and kept no probe_rtt_ms, clock_skew_ms
// or history; such a record is still read (docs/ARCHITECTURE.md).
type record struct {
	monitor.PeerJSON
	IntervalNS int64 `json:"interval_ns,omitempty"` // read, never written
}

func toRecord(p *monitor.PeerInfo, now time.Time) record {
	return record{PeerJSON: p.JSON(now)}
}

func (r *record) peerInfo() monitor.PeerInfo {
	p := r.Info()
	if r.IntervalMS == 0 && r.IntervalNS > 0 {
		p.Interval = time.Duration(r.IntervalNS)
	}
	return p
}
