package monitor

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/hbmesh/hbmesh/internal/natsort"
	"github.com/hbmesh/hbmesh/wire"
)

// HistoryLen is how many intervals [PeerJSON.History] shows.
const HistoryLen = 32

// PeerJSON is a peer in JSON as one monitor sees it: the shape of a peer
// in the HTTP API's /api/peers, the discovery service's peers replies
// (which hbmesh status reads) and restart memory. The rows of `hbmesh
// status --json` are another concept, a merge of every monitor's view of
// a peer that carries the fields of the monitor that heard it last. Times
// are RFC 3339; durations are milliseconds, as interval_ms is in a beat.
type PeerJSON struct {
	ID    string    `json:"id"`
	Host  string    `json:"host"`
	State State     `json:"state"`
	Since time.Time `json:"since"`
	// Reason is why the peer entered State, as events name it; "" when
	// not known.
	Reason   Reason    `json:"reason"`
	LastBeat time.Time `json:"last_beat"`
	// LastBeatAgeMS is how long before the document's time the last
	// beat arrived; 0 if none did.
	LastBeatAgeMS int64  `json:"last_beat_age_ms"`
	Seq           uint64 `json:"seq"`
	Boot          string `json:"boot"`
	PID           int    `json:"pid"`
	IntervalMS    int64  `json:"interval_ms"`
	// ProbeRTTMS keeps sub-millisecond precision; 0 until a probe was
	// answered.
	ProbeRTTMS  float64           `json:"probe_rtt_ms"`
	Version     string            `json:"version"`
	Labels      map[string]string `json:"labels"` // never null
	Conflict    bool              `json:"conflict"`
	ClockSkewMS int64             `json:"clock_skew_ms"`
	// History is the last HistoryLen intervals as '1' (a beat arrived)
	// and '0', newest first.
	History string `json:"history"`
}

// JSON returns p as a document written at now shows it.
func (p *PeerInfo) JSON(now time.Time) PeerJSON {
	j := PeerJSON{
		ID: p.ID, Host: p.Host, State: p.State, Since: p.Since, Reason: p.Reason, LastBeat: p.LastBeat,
		Seq: p.Seq, Boot: p.Boot, PID: p.PID, IntervalMS: p.Interval.Milliseconds(),
		ProbeRTTMS: float64(p.ProbeRTT.Microseconds()) / 1000,
		Version:    p.Version, Labels: p.Labels, Conflict: p.Conflict,
		ClockSkewMS: p.ClockSkew.Milliseconds(),
	}
	if !p.LastBeat.IsZero() {
		j.LastBeatAgeMS = max(0, now.Sub(p.LastBeat).Milliseconds())
	}
	if j.Labels == nil {
		j.Labels = map[string]string{}
	}
	var h [HistoryLen]byte
	for i := range h {
		h[i] = '0' + byte(p.History>>i&1)
	}
	j.History = string(h[:])
	return j
}

// Info returns the snapshot j shows, to the precision JSON keeps it.
// LastSeen is LastBeat: a document does not say when a probe was last
// answered. No labels are nil Labels.
func (j *PeerJSON) Info() PeerInfo {
	p := PeerInfo{
		ID: j.ID, Host: j.Host, State: j.State, Since: j.Since, Reason: j.Reason, LastBeat: j.LastBeat, LastSeen: j.LastBeat,
		Seq: j.Seq, Boot: j.Boot, PID: j.PID, Interval: time.Duration(j.IntervalMS) * time.Millisecond,
		ProbeRTT: time.Duration(math.Round(j.ProbeRTTMS*1000)) * time.Microsecond,
		Version:  j.Version, Conflict: j.Conflict, ClockSkew: time.Duration(j.ClockSkewMS) * time.Millisecond,
	}
	if len(j.Labels) > 0 {
		p.Labels = j.Labels
	}
	for i := range min(len(j.History), HistoryLen) {
		if j.History[i] == '1' {
			p.History |= 1 << i
		}
	}
	return p
}

// StatusJSON is a monitor's status in JSON: the one shape of it in every
// document hbmesh writes, the HTTP API's /api/status and status events,
// and the discovery service's status replies (which hbmesh status reads).
// Times are RFC 3339 and durations milliseconds, as in [PeerJSON];
// counters count from the monitor's start, as [Stats] does.
type StatusJSON struct {
	Monitor string    `json:"monitor"`
	Prefix  string    `json:"prefix"`  // beats are watched on <prefix>.*
	Version string    `json:"version"` // the hbmesh version
	Time    time.Time `json:"time"`
	// Ready is Monitor.Ready() == nil; ReadyError says why not.
	Ready      bool   `json:"ready"`
	ReadyError string `json:"ready_error,omitempty"`
	Connected  bool   `json:"connected"` // the monitor's NATS connection is up
	Impaired   bool   `json:"impaired"`  // verdicts are suspended
	FastPath   bool   `json:"fast_path"` // the crash fast path works (Stats.FastPath)
	Peers      int    `json:"peers"`     // peers in the table
	// PeersByState and Transitions have a key for every state.
	PeersByState   map[State]int    `json:"peers_by_state"`
	Transitions    map[State]uint64 `json:"transitions"` // by target state
	Beats          uint64           `json:"beats"`
	Rejected       uint64           `json:"rejected"` // every reason; hbmesh_beats_rejected_total has each
	ProbesSent     uint64           `json:"probes_sent"`
	ProbesAnswered uint64           `json:"probes_answered"`
	ProbesFailed   uint64           `json:"probes_failed"`
	Evicted        uint64           `json:"evicted"`
	Forgotten      uint64           `json:"forgotten"`
	Restarts       uint64           `json:"restarts"`
	Conflicts      uint64           `json:"conflicts"`
	Stalls         uint64           `json:"stalls"`
	StalledMS      int64            `json:"stalled_ms"`
	Outages        uint64           `json:"outages"`
	Dropped        uint64           `json:"dropped"` // beats NATS dropped for a full beat queue
}

// JSON returns s as a [StatusJSON], ready being the monitor's
// [Monitor.Ready]. Monitor, Prefix, Version and Time, which s does not
// hold, are left for the caller to set.
func (s *Stats) JSON(ready error) StatusJSON {
	j := StatusJSON{
		Ready: ready == nil, Connected: s.Connected, Impaired: s.Impaired, FastPath: s.FastPath,
		PeersByState: make(map[State]int, 4), Transitions: make(map[State]uint64, 4),
		Beats: s.Beats, ProbesSent: s.ProbesSent, ProbesAnswered: s.ProbesAnswered, ProbesFailed: s.ProbesFailed,
		Evicted: s.Evicted, Forgotten: s.Forgotten, Restarts: s.Restarts, Conflicts: s.Conflicts,
		Stalls: s.Stalls, StalledMS: s.StalledFor.Milliseconds(), Outages: s.Outages, Dropped: s.Dropped,
	}
	if ready != nil {
		j.ReadyError = ready.Error()
	}
	for _, st := range States() {
		j.PeersByState[st] = s.Peers[st]
		j.Transitions[st] = s.Transitions[st]
		j.Peers += s.Peers[st]
	}
	for _, n := range s.Rejected {
		j.Rejected += n
	}
	return j
}

// ComparePeers is the order of every list of peers: [Monitor.TopPeers],
// the HTTP API, discovery replies and hbmesh status. Worst state first
// ([State.Severity]), then by id in natural order: runs of digits compare
// as numbers, so web-2 comes before web-10, and of two equal numbers the
// one with fewer leading zeros comes first. It returns a negative number
// when peer a (in state sa) comes first, a positive one when b does, and
// 0 only for one state and id.
func ComparePeers(sa State, a string, sb State, b string) int {
	return cmp.Or(cmp.Compare(sa.Severity(), sb.Severity()), natsort.Compare(a, b))
}

// SortPeers sorts ps in the order of [ComparePeers].
func SortPeers(ps []PeerInfo) {
	slices.SortFunc(ps, func(a, b PeerInfo) int { return ComparePeers(a.State, a.ID, b.State, b.ID) })
}

// ErrBadEvent is wrapped by every error of [DecodeEvent].
var ErrBadEvent = errors.New("bad event")

// eventJSON is the object [Event.AppendJSON] writes.
type eventJSON struct {
	Time       time.Time `json:"time"`
	ID         string    `json:"id"`
	Host       string    `json:"host"`
	State      State     `json:"state"`
	Prev       State     `json:"prev"`
	Reason     Reason    `json:"reason"`
	Boot       string    `json:"boot"`
	Seq        uint64    `json:"seq"`
	IntervalMS int64     `json:"interval_ms"`
	Restart    bool      `json:"restart"`
	PrevBoot   string    `json:"prev_boot"`
	Conflict   bool      `json:"conflict"`
	Repeat     int       `json:"repeat"`
	LastBeat   time.Time `json:"last_beat"`
	Monitor    string    `json:"monitor"`
}

// DecodeEvent parses an event as [Event.AppendJSON] writes it: a line of
// `hbmesh monitor --json`, or an event as monitors publish it on
// <prefix>.events.<state>.<id>. It returns the event and the reporting
// monitor's id ("" when absent). Anything else, including an event
// without a valid id, a time or a known state, is an error wrapping
// [ErrBadEvent]. Overshoot is not in the JSON and comes back 0; LastBeat
// is zero when "last_beat" is absent.
func DecodeEvent(data []byte) (Event, string, error) {
	var j eventJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return Event{}, "", fmt.Errorf("%w: %w", ErrBadEvent, err)
	}
	switch {
	case wire.ValidateID(j.ID) != nil:
		return Event{}, "", fmt.Errorf("%w: id: %w", ErrBadEvent, wire.ValidateID(j.ID))
	case j.State == StateUnknown:
		return Event{}, "", fmt.Errorf("%w: no state", ErrBadEvent)
	case j.Time.IsZero():
		return Event{}, "", fmt.Errorf("%w: no time", ErrBadEvent)
	case !encodable(j.Time) || !j.LastBeat.IsZero() && !encodable(j.LastBeat):
		return Event{}, "", fmt.Errorf("%w: time or last_beat beyond year 9999 in UTC", ErrBadEvent)
	case j.IntervalMS < 0 || j.IntervalMS > math.MaxInt64/int64(time.Millisecond) || j.Repeat < 0:
		return Event{}, "", fmt.Errorf("%w: interval_ms or repeat out of range", ErrBadEvent)
	case j.Monitor != "" && wire.ValidateID(j.Monitor) != nil:
		return Event{}, "", fmt.Errorf("%w: monitor: %w", ErrBadEvent, wire.ValidateID(j.Monitor))
	}
	return Event{
		Time: j.Time, ID: j.ID, Host: j.Host, State: j.State, Prev: j.Prev,
		Reason: j.Reason, Boot: j.Boot, PrevBoot: j.PrevBoot, Seq: j.Seq,
		Interval: time.Duration(j.IntervalMS) * time.Millisecond,
		Restart:  j.Restart, Conflict: j.Conflict, Repeat: j.Repeat, LastBeat: j.LastBeat,
	}, j.Monitor, nil
}

// encodable reports whether t in UTC, as AppendJSON writes it, is an RFC
// 3339 time: "9999-12-31T23:00:00-05:00" parses, and is year 10000 in
// UTC.
func encodable(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 0 && y <= 9999
}
