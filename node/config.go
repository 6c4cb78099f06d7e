package node

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"time"
	"unicode/utf8"

	"github.com/hbmesh/hbmesh/clock"
	"github.com/hbmesh/hbmesh/internal/cfgerr"
	"github.com/hbmesh/hbmesh/wire"
)

// ErrInvalidConfig is matched (errors.Is) by every error [Config.Validate]
// and [New] return for a bad configuration. It is the same value as every
// other hbmesh package's ErrInvalidConfig.
var ErrInvalidConfig = cfgerr.ErrInvalid

// invalid builds Validate's errors.
const invalid cfgerr.Of = "node"

// Bounds of [Config.Interval].
const (
	// MinInterval is the shortest beat interval. Faster beats cost the
	// whole mesh bandwidth and buy little detection speed.
	MinInterval = 100 * time.Millisecond
	// MaxInterval is the longest beat interval.
	MaxInterval = time.Hour
)

// MaxJitter is the largest allowed [Config.Jitter].
const MaxJitter = 0.2

// Config configures a [Node]. Start from [DefaultConfig] and override what
// you need. [New] fills any field left at its zero value (except Jitter,
// Labels and DropBeat, whose zero values are meaningful) with the default
// documented here, then calls [Config.Validate].
type Config struct {
	// ID names the node on the wire; it is one subject token (see
	// [wire.ValidateID]). Default: [wire.IDFromHostname] of Host.
	// DefaultConfig derives it from the OS hostname; if you change Host,
	// set ID to "" so New derives it from your Host instead.
	ID string

	// Host is the host name reported in beats, at most [wire.MaxHostLen]
	// bytes. Default: os.Hostname() ("" if that fails).
	Host string

	// Prefix is the subject prefix (see [wire.NewSubjects]). Default:
	// [wire.DefaultPrefix] ("hb").
	Prefix string

	// Interval is the nominal time between beats, within [MinInterval,
	// MaxInterval]. It is advertised in every beat as interval_ms so
	// monitors can size their timeouts. Default: 1s.
	Interval time.Duration

	// Jitter spreads beats so that many nodes started together do not
	// beat in lockstep: each wait is Interval * (1 + u) with u uniform in
	// [-Jitter, +Jitter]. It must be within [0, MaxJitter]. Default from
	// DefaultConfig: 0.05; zero means no jitter.
	Jitter float64

	// Labels are free-form key/value pairs carried in every beat, checked
	// with [wire.ValidateLabels]. Default: none. New copies the map.
	Labels map[string]string

	// Version is the software version reported in beats, at most
	// [wire.MaxVersionLen] bytes. Default: "dev".
	Version string

	// PID is the process id reported in beats. Default: os.Getpid().
	PID int

	// Boot identifies this incarnation of the node, so a monitor can tell
	// a restart from a late beat; at most [wire.MaxBootLen] bytes.
	// Default: a fresh random value (16 lowercase hex digits) generated
	// by every call to New. Leave it empty unless you are replaying a
	// known incarnation in a test.
	Boot string

	// Clock is the time source for timestamps and the beat ticker.
	// Default: [clock.Real].
	Clock clock.Clock

	// Logger receives debug and error records, keyed "peer", "subject"
	// and "err". Default: a logger that discards everything.
	Logger *slog.Logger

	// DropBeat is a fault-injection seam for tests: when it returns true
	// the beat with that seq is not published (seq still advances, so
	// monitors see a gap). Probes are still answered and the goodbye beat
	// is never dropped. It is called from Run's goroutine only.
	// Default: nil, never drop.
	DropBeat func(seq uint64) bool
}

// DefaultConfig returns the documented defaults. It reads the host name
// and process id, so ID, Host and PID describe the running process.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		ID:       wire.IDFromHostname(host),
		Host:     host,
		Prefix:   wire.DefaultPrefix,
		Interval: time.Second,
		Jitter:   0.05,
		Version:  "dev",
		PID:      os.Getpid(),
		Clock:    clock.Real(),
		Logger:   slog.New(slog.DiscardHandler),
	}
}

// withDefaults fills zero fields. Boot is left to New so that every Node
// gets its own.
func (c Config) withDefaults() Config {
	if c.Host == "" {
		c.Host, _ = os.Hostname()
	}
	if c.ID == "" {
		c.ID = wire.IDFromHostname(c.Host)
	}
	if c.Prefix == "" {
		c.Prefix = wire.DefaultPrefix
	}
	if c.Interval == 0 {
		c.Interval = time.Second
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.PID == 0 {
		c.PID = os.Getpid()
	}
	if c.Clock == nil {
		c.Clock = clock.Real()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports the first field that breaks its documented bounds,
// naming the field and its value. An empty Boot is accepted (New generates
// one), as are a nil Clock and Logger; every other zero value is checked as
// is. Errors about ID also match [wire.ErrInvalidID].
func (c Config) Validate() error {
	if err := wire.ValidateID(c.ID); err != nil {
		return invalid.Wrap("ID", nil, err)
	}
	if len(c.Host) > wire.MaxHostLen {
		return invalid.Field("Host", c.Host, fmt.Sprintf("is longer than %d bytes", wire.MaxHostLen))
	}
	if !utf8.ValidString(c.Host) {
		return invalid.Field("Host", c.Host, "is not valid UTF-8")
	}
	if err := wire.ValidatePrefix(c.Prefix); err != nil {
		return invalid.Wrap("Prefix", nil, err)
	}
	if c.Interval < MinInterval {
		return invalid.Field("Interval", c.Interval, fmt.Sprintf("is below the minimum %v", MinInterval))
	}
	if c.Interval > MaxInterval {
		return invalid.Field("Interval", c.Interval, fmt.Sprintf("is above the maximum %v", MaxInterval))
	}
	if !(c.Jitter >= 0 && c.Jitter <= MaxJitter) { // also catches NaN
		return invalid.Field("Jitter", c.Jitter, fmt.Sprintf("must be within [0, %v]", MaxJitter))
	}
	if err := wire.ValidateLabels(c.Labels); err != nil {
		return invalid.Wrap("Labels", nil, err)
	}
	if len(c.Version) > wire.MaxVersionLen || !utf8.ValidString(c.Version) {
		return invalid.Field("Version", c.Version, fmt.Sprintf("must be valid UTF-8 of at most %d bytes", wire.MaxVersionLen))
	}
	if c.PID < 0 || c.PID > math.MaxInt32 {
		return invalid.Field("PID", c.PID, fmt.Sprintf("must be within [0, %d]", math.MaxInt32))
	}
	if len(c.Boot) > wire.MaxBootLen || !utf8.ValidString(c.Boot) {
		return invalid.Field("Boot", c.Boot, fmt.Sprintf("must be valid UTF-8 of at most %d bytes", wire.MaxBootLen))
	}
	// Every field is within its own bound; make sure they fit together.
	// The widest beat has the largest seq and the longest timestamp.
	boot := c.Boot
	if boot == "" {
		boot = "0123456789abcdef"
	}
	widest := wire.Beat{
		V: wire.Version, ID: c.ID, Host: c.Host, PID: c.PID, Boot: boot,
		Seq: math.MaxUint64, TS: time.Date(2999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		IntervalMS: c.Interval.Milliseconds(), Status: wire.StatusLeaving,
		Version: c.Version, Labels: c.Labels,
	}
	if n := len(wire.AppendBeat(nil, &widest)); n > wire.MaxPayload {
		return invalid.Field("Labels", nil, fmt.Sprintf("make the beat %d bytes, more than %d (shorten Host, Version, Boot or Labels)", n, wire.MaxPayload))
	}
	return nil
}
