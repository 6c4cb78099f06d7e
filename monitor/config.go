package monitor

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/hbmesh/hbmesh/clock"
	"github.com/hbmesh/hbmesh/internal/cfgerr"
	"github.com/hbmesh/hbmesh/wire"
)

// ErrInvalidConfig is matched (errors.Is) by every error [Config.Validate]
// returns. It is the same value as every other hbmesh package's
// ErrInvalidConfig.
var ErrInvalidConfig = cfgerr.ErrInvalid

// invalid builds Validate's errors.
const invalid cfgerr.Of = "monitor"

// Detector selects how silence turns into verdicts.
type Detector string

// The detectors.
const (
	// DetectorFixed suspects a peer after SuspectAfter and convicts it after
	// DeadAfter of its announced intervals. Predictable; the default.
	DetectorFixed Detector = "fixed"
	// DetectorPhi uses a per-peer phi-accrual estimate of inter-arrival
	// times, so it adapts to each peer's observed jitter.
	DetectorPhi Detector = "phi"
)

// Config configures a Monitor. Use [DefaultConfig] and change what you
// need; [New] also fills any zero field with its default.
type Config struct {
	// ID names this monitor in events and logs. Default: "<hostname>-<pid>"
	// made into a valid id.
	ID string
	// Prefix is the subject prefix. Default wire.DefaultPrefix ("hb").
	Prefix string

	// Detector is DetectorFixed (default) or DetectorPhi.
	Detector Detector
	// SuspectAfter is how many announced intervals of silence make a peer
	// suspect (and trigger one probe). Default 2.
	SuspectAfter float64
	// DeadAfter is how many announced intervals of silence, with the probe
	// unanswered, make a peer dead. Default 3. Must exceed SuspectAfter.
	DeadAfter float64

	// PhiThreshold is the phi at which the phi detector convicts; a peer is
	// suspected (and probed) at half of it. Default 8 (a 1e-8 chance that a
	// live peer is that late, under the model).
	PhiThreshold float64
	// PhiMinStdDev is the smallest standard deviation the phi detector
	// assumes, as a fraction of the announced interval, so a metronome-
	// regular peer is not convicted by a few milliseconds of delay.
	// Default 0.1.
	PhiMinStdDev float64
	// PhiPause is extra silence the phi detector always tolerates, in
	// announced intervals, so one lost beat is never a death. Default 1.
	// Zero means the default, as for every field; for (almost) no pause
	// set a small value such as 0.001.
	PhiPause float64
	// PhiWarmup is how many inter-arrival samples a peer needs before the
	// phi detector is used for it; until then the fixed rule applies.
	// Default 8.
	PhiWarmup int

	// MinInterval and MaxInterval bound the interval a beat may announce;
	// beats outside are rejected with reason "interval". Defaults 100ms, 1h.
	MinInterval, MaxInterval time.Duration

	// MaxPeers bounds the peer table. When it is full, the least recently
	// heard id seen only once is forgotten (and counted); an established
	// peer (two accepted beats or more) goes only when there is none, so a
	// flood of one-off ids cannot push real peers out. Default 100000.
	MaxPeers int
	// Retention is how long dead and left peers stay in the table before
	// they are forgotten (logged, and counted in Stats.Forgotten). A dead
	// peer stops counting as dead when it is forgotten, so an alert on
	// dead peers resolves then. Default 24h.
	Retention time.Duration

	// Resolution is the sweep tick: verdicts are at most this late.
	// Default 10ms.
	Resolution time.Duration
	// StallThreshold is how much later than Resolution a sweep tick may
	// come before the monitor treats the gap as its own stall and extends
	// every deadline by it. Default 250ms.
	StallThreshold time.Duration
	// MaxBacklog is how many beats may wait in the monitor's subscription
	// before it holds its verdicts: a queued beat has arrived but not yet
	// been counted, so under a backlog silence is not yet known to be
	// silence. Verdicts resume once the backlog is worked off. Default 1024.
	MaxBacklog int
	// BeatQueue is how many received beats may wait for the monitor
	// before NATS drops further ones as a slow consumer. A drop is
	// counted, logged, and answered by granting every peer a fresh
	// timeout, so it delays verdicts but never causes one. The queue is a
	// channel allocated in full when Run starts, 8 bytes a slot (2 MiB at
	// the largest default). Zero, the default, means 2*MaxPeers within
	// [4096, 262144], and never less than MaxBacklog.
	BeatQueue int
	// SelfCheckInterval is how often the monitor round-trips a PING to its
	// server to prove its own connection is live; a failed check suspends
	// verdicts until the connection is proven again. Default 500ms.
	SelfCheckInterval time.Duration
	// SelfCheckTimeout bounds one self check. Default 1s.
	SelfCheckTimeout time.Duration

	// NoFastPath turns the crash fast path off: the monitor then does not
	// subscribe to Advisories and judges by beats and probes alone.
	NoFastPath bool
	// Advisories is the subject of the server's client DISCONNECT
	// advisories that the monitor subscribes to for the crash fast path
	// (see docs/RELIABILITY.md). Default wire.DisconnectAdvisories
	// ("$SYS.ACCOUNT.*.DISCONNECT"), which matches an import of the
	// account's own advisories whatever the account is called; set it if
	// the import maps them elsewhere.
	Advisories string
	// DisconnectMargin is added to the reconnect window a node announces
	// (wire.NodeConn.Reconnect) before the monitor checks on it after a
	// disconnect advisory: time for a live node's reconnect handshake and
	// for its probe subscription to reach the monitor's server across the
	// cluster. Raise it for nodes more than a few tens of milliseconds
	// away from their servers. Default 100ms.
	DisconnectMargin time.Duration
	// ConfirmTimeout is how long the fast path's probe may go unanswered.
	// An answer means alive, NATS' "no responders" confirms the crash,
	// and silence past ConfirmTimeout proves nothing: the peer is left to
	// the timeout path. Default 500ms.
	ConfirmTimeout time.Duration
	// FastPathSettle is how long the monitor's connection must have been
	// up, and its observation unimpaired, before it acts on an advisory:
	// after its server restarts, the server learns the subscriptions of
	// the rest of the cluster only as its routes come up, and until then
	// "no responders" could be wrong. Default 2s (nats-server retries a
	// route every second).
	FastPathSettle time.Duration

	// OnEvent, if set, receives every transition. It is called from one
	// goroutine that Run owns, never concurrently, in the order
	// transitions happened. It may call Peers, Peer, Stats and Ready.
	// While it runs, further events queue up in memory without bound, and
	// Run, when its context is done, returns only after OnEvent has
	// returned for the events already queued: an OnEvent that blocks for
	// good (on a channel nobody reads any more, say) keeps Run from
	// returning, and it must never wait for Run itself. A panic in it
	// crashes the process, as in any goroutine.
	OnEvent func(Event)

	// Restore seeds the table at Run, e.g. from restart memory. Restored
	// peers get one full dead-timeout of grace before any verdict. They
	// keep their state (suspect is restored as alive), Since and LastBeat,
	// and produce no event: the first event for a restored peer is its
	// next transition. Entries with an invalid id, an interval outside
	// [MinInterval, MaxInterval] or another state are skipped, and Run
	// logs how many.
	Restore []PeerInfo

	// Clock is the time source. Default clock.Real().
	Clock clock.Clock
	// Logger receives the monitor's logs. Default: discard.
	Logger *slog.Logger
}

// DefaultConfig returns a Config with the documented defaults filled in.
// ID, BeatQueue, Clock and Logger stay zero: [New] derives them (from the
// host name and pid, from MaxPeers, the real clock, and a discarding
// logger).
func DefaultConfig() Config {
	return Config{
		Prefix:            wire.DefaultPrefix,
		Detector:          DetectorFixed,
		SuspectAfter:      2,
		DeadAfter:         3,
		PhiThreshold:      8,
		PhiMinStdDev:      0.1,
		PhiPause:          1,
		PhiWarmup:         8,
		MinInterval:       100 * time.Millisecond,
		MaxInterval:       time.Hour,
		MaxPeers:          100_000,
		Retention:         24 * time.Hour,
		Resolution:        10 * time.Millisecond,
		StallThreshold:    250 * time.Millisecond,
		SelfCheckInterval: 500 * time.Millisecond,
		SelfCheckTimeout:  time.Second,
		MaxBacklog:        1024,
		Advisories:        wire.DisconnectAdvisories,
		DisconnectMargin:  100 * time.Millisecond,
		ConfirmTimeout:    500 * time.Millisecond,
		FastPathSettle:    2 * time.Second,
	}
}

// Bounds of BeatQueue: the default's floor and ceiling, and the most any
// Config may ask for (128 MiB of slots).
const (
	minBeatQueue        = 4096
	maxDefaultBeatQueue = 1 << 18
	maxBeatQueue        = 1 << 24
)

// validSubscription checks a subject a monitor subscribes to: non-empty
// tokens, no whitespace, and '>' only as the last token.
func validSubscription(subj string) error {
	if subj == "" {
		return errors.New("is empty")
	}
	toks := strings.Split(subj, ".")
	for i, tok := range toks {
		switch {
		case tok == "":
			return errors.New("has an empty token")
		case strings.ContainsAny(tok, " \t\r\n"):
			return errors.New("has whitespace")
		case tok == ">" && i != len(toks)-1:
			return errors.New("has '>' before its last token")
		}
	}
	return nil
}

// Validate reports the first field that is out of range, by name and value.
// It checks c as it is; [New] first fills zero fields with their defaults,
// so a Config that New accepts may still fail Validate (Config{} does, on
// its empty Prefix).
func (c Config) Validate() error {
	if err := wire.ValidatePrefix(c.Prefix); err != nil {
		return invalid.Wrap("Prefix", nil, err)
	}
	if c.ID != "" {
		if err := wire.ValidateID(c.ID); err != nil {
			return invalid.Wrap("ID", nil, err)
		}
	}
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	switch {
	case c.Detector != DetectorFixed && c.Detector != DetectorPhi:
		return invalid.Field("Detector", string(c.Detector), `is neither "fixed" nor "phi"`)
	case !finite(c.SuspectAfter) || c.SuspectAfter < 1:
		return invalid.Field("SuspectAfter", c.SuspectAfter, "must be at least 1")
	case !finite(c.DeadAfter) || c.DeadAfter <= c.SuspectAfter:
		return invalid.Field("DeadAfter", c.DeadAfter, fmt.Sprintf("must exceed SuspectAfter (%v)", c.SuspectAfter))
	case c.DeadAfter > 100:
		return invalid.Field("DeadAfter", c.DeadAfter, "must be at most 100")
	case !finite(c.PhiThreshold) || c.PhiThreshold < 1 || c.PhiThreshold > 16:
		return invalid.Field("PhiThreshold", c.PhiThreshold, "must be within [1, 16]")
	case !finite(c.PhiMinStdDev) || c.PhiMinStdDev < 0.01 || c.PhiMinStdDev > 1:
		return invalid.Field("PhiMinStdDev", c.PhiMinStdDev, "must be within [0.01, 1]")
	case !finite(c.PhiPause) || c.PhiPause < 0 || c.PhiPause > 10:
		return invalid.Field("PhiPause", c.PhiPause, "must be within [0, 10]")
	case c.PhiWarmup < 2:
		return invalid.Field("PhiWarmup", c.PhiWarmup, "must be at least 2")
	case c.MinInterval <= 0:
		return invalid.Field("MinInterval", c.MinInterval, "must be positive")
	case c.MaxInterval < c.MinInterval:
		return invalid.Field("MaxInterval", c.MaxInterval, fmt.Sprintf("must be at least MinInterval (%v)", c.MinInterval))
	case c.MaxPeers < 1:
		return invalid.Field("MaxPeers", c.MaxPeers, "must be at least 1")
	case c.Retention <= 0:
		return invalid.Field("Retention", c.Retention, "must be positive")
	case c.Resolution < time.Millisecond || c.Resolution > time.Second:
		return invalid.Field("Resolution", c.Resolution, "must be within [1ms, 1s]")
	case c.StallThreshold < 10*time.Millisecond:
		return invalid.Field("StallThreshold", c.StallThreshold, "must be at least 10ms")
	case c.MaxBacklog < 1:
		return invalid.Field("MaxBacklog", c.MaxBacklog, "must be at least 1")
	case c.BeatQueue != 0 && (c.BeatQueue < c.MaxBacklog || c.BeatQueue > maxBeatQueue):
		return invalid.Field("BeatQueue", c.BeatQueue, fmt.Sprintf("must be within [MaxBacklog (%d), %d]", c.MaxBacklog, maxBeatQueue))
	case c.SelfCheckInterval < 10*time.Millisecond:
		return invalid.Field("SelfCheckInterval", c.SelfCheckInterval, "must be at least 10ms")
	case c.SelfCheckTimeout < 10*time.Millisecond:
		return invalid.Field("SelfCheckTimeout", c.SelfCheckTimeout, "must be at least 10ms")
	case c.DisconnectMargin < 0 || c.DisconnectMargin > time.Minute:
		return invalid.Field("DisconnectMargin", c.DisconnectMargin, "must be within [0, 1m]")
	case c.ConfirmTimeout < 10*time.Millisecond || c.ConfirmTimeout > time.Minute:
		return invalid.Field("ConfirmTimeout", c.ConfirmTimeout, "must be within [10ms, 1m]")
	case c.FastPathSettle < 0 || c.FastPathSettle > time.Hour:
		return invalid.Field("FastPathSettle", c.FastPathSettle, "must be within [0, 1h]")
	}
	if !c.NoFastPath {
		if err := validSubscription(c.Advisories); err != nil {
			return invalid.Field("Advisories", c.Advisories, err.Error())
		}
	}
	return nil
}

// fillDefaults sets zero-valued fields to their defaults: zero means
// "default" for every field, PhiPause and DisconnectMargin included.
func (c *Config) fillDefaults() {
	d := DefaultConfig()
	c.Prefix = cmp.Or(c.Prefix, d.Prefix)
	c.Detector = cmp.Or(c.Detector, d.Detector)
	c.SuspectAfter = cmp.Or(c.SuspectAfter, d.SuspectAfter)
	c.DeadAfter = cmp.Or(c.DeadAfter, d.DeadAfter)
	c.PhiThreshold = cmp.Or(c.PhiThreshold, d.PhiThreshold)
	c.PhiMinStdDev = cmp.Or(c.PhiMinStdDev, d.PhiMinStdDev)
	c.PhiPause = cmp.Or(c.PhiPause, d.PhiPause)
	c.PhiWarmup = cmp.Or(c.PhiWarmup, d.PhiWarmup)
	c.MinInterval = cmp.Or(c.MinInterval, d.MinInterval)
	c.MaxInterval = cmp.Or(c.MaxInterval, d.MaxInterval)
	c.MaxPeers = cmp.Or(c.MaxPeers, d.MaxPeers)
	c.Retention = cmp.Or(c.Retention, d.Retention)
	c.Resolution = cmp.Or(c.Resolution, d.Resolution)
	c.StallThreshold = cmp.Or(c.StallThreshold, d.StallThreshold)
	c.MaxBacklog = cmp.Or(c.MaxBacklog, d.MaxBacklog)
	c.SelfCheckInterval = cmp.Or(c.SelfCheckInterval, d.SelfCheckInterval)
	c.SelfCheckTimeout = cmp.Or(c.SelfCheckTimeout, d.SelfCheckTimeout)
	c.Advisories = cmp.Or(c.Advisories, d.Advisories)
	c.DisconnectMargin = cmp.Or(c.DisconnectMargin, d.DisconnectMargin)
	c.ConfirmTimeout = cmp.Or(c.ConfirmTimeout, d.ConfirmTimeout)
	c.FastPathSettle = cmp.Or(c.FastPathSettle, d.FastPathSettle)
	if c.BeatQueue == 0 && c.MaxPeers > 0 {
		// Its default follows MaxPeers, which must be filled first; a
		// negative MaxPeers is left for Validate to name.
		c.BeatQueue = max(min(max(2*c.MaxPeers, minBeatQueue), maxDefaultBeatQueue), c.MaxBacklog)
	}
	c.Clock = cmp.Or(c.Clock, clock.Real())
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
}
