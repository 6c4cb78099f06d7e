package monitor

import (
	"slices"
	"time"

	"github.com/hbmesh/hbmesh/wire"
)

// Rejection reasons added by the monitor to the wire decoder's.
const (
	rejSubject          = "subject"           // subject is not <prefix>.<valid id>
	rejIDMismatch       = "id_mismatch"       // payload id differs from the subject's id
	rejInterval         = "interval"          // interval_ms outside [MinInterval, MaxInterval]
	rejReplay           = "replay"            // seq did not increase within a boot
	rejHostMismatch     = "host_mismatch"     // host changed within a boot
	rejFlood            = "flood"             // beats closer than a tenth of the interval
	rejProbeMismatch    = "probe_mismatch"    // probe reply from an unknown peer or another boot
	rejProbeUnsolicited = "probe_unsolicited" // probe reply nobody asked for
	rejProbeMalformed   = "probe_malformed"   // probe reply that does not decode
)

// rejectReasons is the closed set behind [RejectReasons]; a reason's
// index is its slot in counters.rejected.
var rejectReasons = [...]string{
	string(wire.ReasonOversize), string(wire.ReasonMalformed), string(wire.ReasonType),
	string(wire.ReasonRange), string(wire.ReasonMissing), string(wire.ReasonVersion),
	string(wire.ReasonUTF8), string(wire.ReasonID), string(wire.ReasonLabels),
	string(wire.ReasonStatus), string(wire.ReasonDuplicate),
	rejSubject, rejIDMismatch, rejInterval, rejReplay, rejHostMismatch, rejFlood,
	rejProbeMismatch, rejProbeUnsolicited, rejProbeMalformed,
}

// RejectReasons returns every reason a beat or probe reply can be
// rejected for, as a new slice the caller may keep or change. The set is
// closed, so it is safe as a metric label; [Stats.Rejected] has a key for
// each.
func RejectReasons() []string { return slices.Clone(rejectReasons[:]) }

var reasonIndex = func() map[string]int {
	m := make(map[string]int, len(rejectReasons))
	for i, r := range rejectReasons {
		m[r] = i
	}
	return m
}()

// What became of a DISCONNECT advisory: the closed set behind
// [AdvisoryResults].
const (
	advChecked     = "checked"      // a check of the peer started (or was put off)
	advNotNode     = "not_node"     // the connection was not a node's (a monitor's, a tool's)
	advMalformed   = "malformed"    // the payload, or a node's connection name, does not parse
	advOtherPrefix = "other_prefix" // a node of another prefix
	advUnknownPeer = "unknown_peer" // a node this monitor has not heard
	advNotAlive    = "not_alive"    // the peer is dead or left already
	advReason      = "reason"       // the disconnect reason leaves the peer to the timeout path
	advUnsettled   = "unsettled"    // the monitor's own observation is impaired or settling
	advSelfCheck   = "self_check"   // the test connection of Monitor.CheckFastPath
)

var advisoryResults = [...]string{advChecked, advNotNode, advMalformed, advOtherPrefix,
	advUnknownPeer, advNotAlive, advReason, advUnsettled, advSelfCheck}

// AdvisoryResults returns what can become of a DISCONNECT advisory, the
// keys of [Stats.Advisories], as a new slice.
func AdvisoryResults() []string { return slices.Clone(advisoryResults[:]) }

// How a fast-path check ended: the closed set behind [CheckOutcomes].
const (
	checkAlive    = "alive"    // the peer beat, or answered, after its advisory
	checkDead     = "dead"     // no responders after the window: dead, reason disconnected
	checkFallback = "fallback" // inconclusive; the timeout path decides
)

var checkOutcomes = [...]string{checkAlive, checkDead, checkFallback}

// CheckOutcomes returns how a crash fast-path check can end, the keys of
// [Stats.Checks], as a new slice.
func CheckOutcomes() []string { return slices.Clone(checkOutcomes[:]) }

func indexOf(set []string, s string) int {
	for i, x := range set {
		if x == s {
			return i
		}
	}
	return -1
}

// ProbeRTTBuckets returns the upper bounds, in seconds, of the buckets of
// [Stats.ProbeRTT], as a new slice the caller may keep or change.
func ProbeRTTBuckets() []float64 {
	return []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
}

// OvershootBuckets returns the upper bounds, in seconds, of the buckets
// of [Stats.Overshoot], as a new slice the caller may keep or change.
func OvershootBuckets() []float64 {
	return []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10}
}

type histogram struct {
	bounds []float64
	counts []uint64 // per bucket, non-cumulative; last is +Inf
	sum    float64
	n      uint64
}

// newHistogram keeps bounds, which the caller must not change afterwards.
func newHistogram(bounds []float64) histogram {
	return histogram{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
}

func (h *histogram) observe(x float64) {
	i := 0
	for i < len(h.bounds) && x > h.bounds[i] {
		i++
	}
	h.counts[i]++
	h.sum += x
	h.n++
}

// Histogram is a snapshot of a fixed-bucket histogram.
type Histogram struct {
	Bounds []float64 // upper bounds, seconds
	Counts []uint64  // cumulative count per bound
	Count  uint64
	Sum    float64 // seconds
}

func (h *histogram) snapshot() Histogram {
	s := Histogram{Bounds: slices.Clone(h.bounds), Counts: make([]uint64, len(h.bounds)), Count: h.n, Sum: h.sum}
	var c uint64
	for i := range h.bounds {
		c += h.counts[i]
		s.Counts[i] = c
	}
	return s
}

type counters struct {
	beats          uint64
	rejected       [len(rejectReasons)]uint64
	transitions    [5]uint64
	byState        [5]int // peers in the table per state
	probesSent     uint64
	probesAnswered uint64
	probesFailed   uint64
	evicted        uint64
	forgotten      uint64
	restarts       uint64
	conflicts      uint64
	stalls         uint64
	stalledFor     time.Duration
	outages        uint64
	deferred       uint64 // sweeps skipped because beats were backlogged
	dropped        uint64 // beats NATS dropped because the beat queue was full
	rtt            histogram
	overshoot      histogram
	advisories     [len(advisoryResults)]uint64
	checks         [len(checkOutcomes)]uint64
	fastPath       bool // an advisory has arrived
}

func (c *counters) reject(reason string) {
	if i, ok := reasonIndex[reason]; ok {
		c.rejected[i]++
	}
}

// Stats is a snapshot of a monitor's counters and gauges.
type Stats struct {
	Beats          uint64            // beats accepted
	Rejected       map[string]uint64 // beats and probe replies rejected, by reason
	Transitions    map[State]uint64  // transitions, by target state
	Peers          map[State]int     // peers currently in each state
	ProbesSent     uint64
	ProbesAnswered uint64
	ProbesFailed   uint64 // timed out, or no responders
	Evicted        uint64 // peers dropped because the table was full
	Forgotten      uint64 // dead or left peers dropped after Retention
	Restarts       uint64
	Conflicts      uint64 // beats from a second boot claiming a known id
	Stalls         uint64 // times the monitor noticed it had stalled
	StalledFor     time.Duration
	Outages        uint64 // times observation was impaired
	// BacklogDeferrals counts sweep ticks whose verdicts waited because
	// more than MaxBacklog beats were queued in the monitor's subscription.
	BacklogDeferrals uint64
	// Dropped counts beats NATS dropped because BeatQueue was full. Each
	// drop grants every peer a fresh timeout.
	Dropped   uint64
	Connected bool // the NATS connection is up
	Impaired  bool // verdicts are suspended
	ProbeRTT  Histogram
	Overshoot Histogram // lateness of dead verdicts with reason timeout

	// FastPath is true while the crash fast path works: a DISCONNECT
	// advisory has reached the monitor (a real one, or the test of
	// Monitor.CheckFastPath), and the monitor has observed without a
	// break for FastPathSettle. False with Config.NoFastPath.
	FastPath bool
	// Advisories counts DISCONNECT advisories by what became of them
	// (every key of AdvisoryResults).
	Advisories map[string]uint64
	// Checks counts crash fast-path checks by how they ended (every key
	// of CheckOutcomes): alive (heard from after its advisory), dead
	// (convicted, reason disconnected), fallback (inconclusive: left to
	// the timeout path).
	Checks map[string]uint64
}
