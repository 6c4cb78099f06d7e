package httpapi

import (
	"cmp"
	"fmt"
	"log/slog"
	"time"

	"github.com/hbmesh/hbmesh/internal/cfgerr"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/wire"
)

// invalid builds Validate's errors.
const invalid cfgerr.Of = "httpapi"

// Source is what the HTTP surface reads. *monitor.Monitor satisfies it.
// Every method must be safe for concurrent use.
type Source interface {
	ID() string
	Peers() []monitor.PeerInfo
	// TopPeers is [monitor.Monitor.TopPeers]: the first limit peers in
	// the given states (all if none), worst state first and then by id in
	// natural order, and how many peers are in those states.
	TopPeers(limit int, states ...monitor.State) ([]monitor.PeerInfo, int)
	Peer(id string) (monitor.PeerInfo, bool)
	Stats() monitor.Stats
	Ready() error
}

// Config configures a [Server]. Start from [DefaultConfig] and set Source;
// [New] also fills every zero field with the default documented here.
type Config struct {
	// Source is the monitor whose state is served. Required.
	Source Source

	// Prefix is the subject prefix the monitor watches, reported by
	// /api/status so that an empty fleet can be told from a wrong prefix.
	// Default: wire.DefaultPrefix ("hb").
	Prefix string

	// Version is the software version reported by /api/status and the
	// hbmesh_build_info metric. Default: "dev".
	Version string

	// PerPeerMetrics adds the per-peer series hbmesh_peer_up and
	// hbmesh_peer_last_beat_age_seconds to /metrics. Off by default: their
	// cardinality grows with the fleet. Default: false.
	PerPeerMetrics bool
	// PerPeerMetricsCap is the most peers that get per-peer series, worst
	// states first and then by id; when more peers exist the gauge
	// hbmesh_peer_series_truncated is 1. Within [1, 100000]. Default: 1000.
	PerPeerMetricsCap int

	// DeadPeerSeriesCap is the most dead peers that get a
	// hbmesh_dead_peer_timestamp_seconds series (first by id, in natural
	// order); the dead peers beyond it are counted in
	// hbmesh_dead_peers_unlisted. Within [1, 100000]. Default: 1000.
	DeadPeerSeriesCap int

	// EventOutputs are the monitor's configured event outputs, exported
	// on /metrics as hbmesh_event_outputs_total{output, result}. List only
	// the outputs in use: an output that is not listed has no series.
	// Default: none.
	EventOutputs []EventOutput

	// EventBuffer is how many recent transitions are kept so an SSE client
	// that reconnects with Last-Event-ID gets exactly the ones it missed.
	// It is also the queue length of each SSE client: a client that falls
	// further behind is disconnected. Within [1, 1<<20]. Default: 1024.
	EventBuffer int
	// MaxSSEClients bounds concurrent /api/events streams; further clients
	// get 503. Within [1, 10000]. Default: 64.
	MaxSSEClients int
	// StatusInterval is how often an SSE stream carries a "status" event
	// (connected, impaired, counts). Within [10ms, 1m]. Default: 2s.
	StatusInterval time.Duration

	// ReadTimeout bounds reading one request, headers and body, in
	// [Server.Serve]. Within [10ms, 10m]. Default: 10s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing one response in [Server.Serve]. SSE
	// streams are exempt: they push the deadline forward before each
	// write, so only a client that stops reading is cut off. Within
	// [10ms, 10m]. Default: 30s.
	WriteTimeout time.Duration

	// Logger receives the server's logs, keyed "err", "remote", "path".
	// Default: discard.
	Logger *slog.Logger
	// Now is the clock for ages and timestamps. Default: time.Now.
	Now func() time.Time
}

// Defaults of [Config].
const (
	DefaultPerPeerMetricsCap = 1000
	DefaultDeadPeerSeriesCap = 1000
	DefaultEventBuffer       = 1024
	DefaultMaxSSEClients     = 64
	DefaultStatusInterval    = 2 * time.Second
	DefaultReadTimeout       = 10 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
)

// DefaultConfig returns a Config with every default filled in except
// Source.
func DefaultConfig() Config {
	return Config{
		Version:           "dev",
		Prefix:            wire.DefaultPrefix,
		PerPeerMetricsCap: DefaultPerPeerMetricsCap,
		DeadPeerSeriesCap: DefaultDeadPeerSeriesCap,
		EventBuffer:       DefaultEventBuffer,
		MaxSSEClients:     DefaultMaxSSEClients,
		StatusInterval:    DefaultStatusInterval,
		ReadTimeout:       DefaultReadTimeout,
		WriteTimeout:      DefaultWriteTimeout,
		Logger:            slog.New(slog.DiscardHandler),
		Now:               time.Now,
	}
}

func (c *Config) fillDefaults() {
	d := DefaultConfig()
	c.Version = cmp.Or(c.Version, d.Version)
	c.Prefix = cmp.Or(c.Prefix, d.Prefix)
	c.PerPeerMetricsCap = cmp.Or(c.PerPeerMetricsCap, d.PerPeerMetricsCap)
	c.DeadPeerSeriesCap = cmp.Or(c.DeadPeerSeriesCap, d.DeadPeerSeriesCap)
	c.EventBuffer = cmp.Or(c.EventBuffer, d.EventBuffer)
	c.MaxSSEClients = cmp.Or(c.MaxSSEClients, d.MaxSSEClients)
	c.StatusInterval = cmp.Or(c.StatusInterval, d.StatusInterval)
	c.ReadTimeout = cmp.Or(c.ReadTimeout, d.ReadTimeout)
	c.WriteTimeout = cmp.Or(c.WriteTimeout, d.WriteTimeout)
	c.Logger = cmp.Or(c.Logger, d.Logger)
	if c.Now == nil { // a func: cmp.Or cannot compare it
		c.Now = d.Now
	}
}

// Validate reports the first field that is out of range, by name and
// value. It checks the fields as they are; [New] fills defaults first.
func (c *Config) Validate() error {
	inDur := func(d, lo, hi time.Duration) bool { return d >= lo && d <= hi }
	switch {
	case c.Source == nil:
		return invalid.Field("Source", nil, "is nil")
	case c.PerPeerMetricsCap < 1 || c.PerPeerMetricsCap > 100_000:
		return invalid.Field("PerPeerMetricsCap", c.PerPeerMetricsCap, "must be within [1, 100000]")
	case c.DeadPeerSeriesCap < 1 || c.DeadPeerSeriesCap > 100_000:
		return invalid.Field("DeadPeerSeriesCap", c.DeadPeerSeriesCap, "must be within [1, 100000]")
	case c.EventBuffer < 1 || c.EventBuffer > 1<<20:
		return invalid.Field("EventBuffer", c.EventBuffer, "must be within [1, 1048576]")
	case c.MaxSSEClients < 1 || c.MaxSSEClients > 10_000:
		return invalid.Field("MaxSSEClients", c.MaxSSEClients, "must be within [1, 10000]")
	case !inDur(c.StatusInterval, 10*time.Millisecond, time.Minute):
		return invalid.Field("StatusInterval", c.StatusInterval, "must be within [10ms, 1m]")
	case !inDur(c.ReadTimeout, 10*time.Millisecond, 10*time.Minute):
		return invalid.Field("ReadTimeout", c.ReadTimeout, "must be within [10ms, 10m]")
	case !inDur(c.WriteTimeout, 10*time.Millisecond, 10*time.Minute):
		return invalid.Field("WriteTimeout", c.WriteTimeout, "must be within [10ms, 10m]")
	case c.Logger == nil:
		return invalid.Field("Logger", nil, "is nil")
	case c.Now == nil:
		return invalid.Field("Now", nil, "is nil")
	}
	seen := make(map[string]bool, len(c.EventOutputs))
	for i, o := range c.EventOutputs {
		switch {
		case o.Name == "" || seen[o.Name]:
			return invalid.Field(fmt.Sprintf("EventOutputs[%d].Name", i), o.Name, "must be set and unique")
		case o.Stats == nil:
			return invalid.Field(fmt.Sprintf("EventOutputs[%d].Stats", i), nil, "must be set")
		}
		seen[o.Name] = true
	}
	return nil
}
