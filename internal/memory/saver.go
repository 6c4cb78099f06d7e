package memory

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/hbmesh/hbmesh/internal/cfgerr"
	"github.com/hbmesh/hbmesh/monitor"
)

// Defaults of [SaverConfig].
const (
	DefaultSaveInterval = 5 * time.Second
	DefaultSaveTimeout  = 10 * time.Second
)

// SaverConfig configures a [Saver].
type SaverConfig struct {
	// Interval is how often the table is saved. A peer that dies within
	// Interval of the monitor's own crash may be forgotten. Default 5s.
	Interval time.Duration
	// Timeout bounds one save, including the final one at shutdown.
	// Default 10s.
	Timeout time.Duration
	// Logger receives the saver's logs. Default: discard.
	Logger *slog.Logger
}

// DefaultSaverConfig returns a SaverConfig with every default filled in.
func DefaultSaverConfig() SaverConfig {
	return SaverConfig{Interval: DefaultSaveInterval, Timeout: DefaultSaveTimeout}
}

// Validate reports the first bad field by name and value.
func (c *SaverConfig) Validate() error {
	const invalid cfgerr.Of = "saver"
	switch {
	case c.Interval < time.Millisecond:
		return invalid.Field("Interval", c.Interval, "must be at least 1ms")
	case c.Timeout < time.Millisecond:
		return invalid.Field("Timeout", c.Timeout, "must be at least 1ms")
	}
	return nil
}

// Saver saves a monitor's peers into a Store periodically and at
// shutdown. Create it with [NewSaver].
type Saver struct {
	store Store
	peers func() []monitor.PeerInfo
	cfg   SaverConfig
	runs  atomic.Bool

	saves, failures atomic.Uint64
}

// NewSaver returns a saver that saves peers() into store, typically with
// peers = (*monitor.Monitor).Peers. Zero fields of cfg take their
// defaults. It does no I/O.
func NewSaver(store Store, peers func() []monitor.PeerInfo, cfg SaverConfig) (*Saver, error) {
	if store == nil || peers == nil {
		return nil, cfgerr.Of("saver").Field("store or peers", nil, "is nil")
	}
	d := DefaultSaverConfig()
	if cfg.Interval == 0 {
		cfg.Interval = d.Interval
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = d.Timeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Saver{store: store, peers: peers, cfg: cfg}, nil
}

// SaverStats are the saver's counters.
type SaverStats struct {
	Saves    uint64 // successful saves
	Failures uint64 // failed saves
}

// Stats returns the saver's counters.
func (s *Saver) Stats() SaverStats {
	return SaverStats{Saves: s.saves.Load(), Failures: s.failures.Load()}
}

// Run saves every Interval until ctx is done, then saves once more (with
// a fresh Timeout, so shutdown still gets its save) and returns that last
// save's error. Failures of periodic saves are logged and counted. Stop
// the monitor before cancelling Run's ctx when possible, so the final save
// holds the monitor's last word. Run may be called once; a second call
// returns [ErrRunTwice].
func (s *Saver) Run(ctx context.Context) error {
	if !s.runs.CompareAndSwap(false, true) {
		return ErrRunTwice
	}
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := s.save(ctx); err != nil && ctx.Err() == nil {
				s.cfg.Logger.Warn("restart memory not saved", "err", err)
			}
		case <-ctx.Done():
			err := s.save(context.WithoutCancel(ctx))
			if err != nil {
				s.cfg.Logger.Error("restart memory: final save failed", "err", err)
			}
			return err
		}
	}
}

func (s *Saver) save(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	if err := s.store.Save(ctx, s.peers()); err != nil {
		s.failures.Add(1)
		return err
	}
	s.saves.Add(1)
	return nil
}
