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

// record is what is remembered of one peer. It is the on-disk and in-KV
// format, so its JSON names are part of the format.
type record struct {
	ID       string            `json:"id"`
	Host     string            `json:"host"`
	State    monitor.State     `json:"state"`
	Boot     string            `json:"boot"`
	Seq      uint64            `json:"seq"`
	PID      int               `json:"pid"`
	Interval time.Duration     `json:"interval_ns"`
	Version  string            `json:"version"`
	Labels   map[string]string `json:"labels,omitempty"`
	Since    time.Time         `json:"since"`
	LastBeat time.Time         `json:"last_beat,omitzero"` // absent in records from before 2026-11-29
}

func toRecord(p *monitor.PeerInfo) record {
	return record{
		ID: p.ID, Host: p.Host, State: p.State, Boot: p.Boot, Seq: p.Seq, PID: p.PID,
		Interval: p.Interval, Version: p.Version, Labels: p.Labels, Since: p.Since,
		LastBeat: p.LastBeat,
	}
}

func (r *record) peerInfo() monitor.PeerInfo {
	return monitor.PeerInfo{
		ID: r.ID, Host: r.Host, State: r.State, Boot: r.Boot, Seq: r.Seq, PID: r.PID,
		Interval: r.Interval, Version: r.Version, Labels: r.Labels, Since: r.Since,
		LastBeat: r.LastBeat, LastSeen: r.LastBeat,
	}
}
