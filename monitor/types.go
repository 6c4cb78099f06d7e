package monitor

import (
	"fmt"
	"strconv"
	"time"

	"github.com/hbmesh/hbmesh/internal/printable"
	"github.com/hbmesh/hbmesh/wire"
)

// State is a peer's liveness as judged by this monitor.
type State uint8

// The states of a peer. StateUnknown is only ever seen as the Prev of a
// peer's first event.
const (
	StateUnknown State = iota
	StateAlive
	StateSuspect
	StateDead
	StateLeft
)

var stateNames = [...]string{"", "alive", "suspect", "dead", "left"}

// States returns the states a peer can be in, worst first, as a new slice
// the caller may keep or change.
func States() []State { return []State{StateDead, StateSuspect, StateAlive, StateLeft} }

// severity is each state's place in States: dead 0, suspect 1, alive 2,
// left 3; StateUnknown and anything unnamed come after them.
var severity = [...]int{StateDead: 0, StateSuspect: 1, StateAlive: 2, StateLeft: 3, StateUnknown: 4}

// Severity is s's position in [States], worst first: dead 0, suspect 1,
// alive 2, left 3, and 4 for StateUnknown or any other value. Lists of
// peers sort by it.
func (s State) Severity() int {
	if int(s) < len(severity) {
		return severity[s]
	}
	return len(severity) - 1
}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// MarshalText encodes the state as its name ("" for StateUnknown).
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a state name.
func (s *State) UnmarshalText(b []byte) error {
	st, err := ParseState(string(b))
	*s = st
	return err
}

// ParseState parses a state name; "" is StateUnknown.
func ParseState(name string) (State, error) {
	for i, n := range stateNames {
		if n == name {
			return State(i), nil
		}
	}
	return StateUnknown, fmt.Errorf("unknown state %q (want alive, suspect, dead or left)", name)
}

// Reason says why a peer changed state, in [Event.Reason]. Its value is
// the short, stable name that events carry in JSON and in exec hooks'
// HBMESH_REASON.
type Reason string

// The reasons a monitor gives.
const (
	ReasonFirstBeat     Reason = "first_beat"     // first beat of a peer not in the table
	ReasonBeat          Reason = "beat"           // a beat arrived from a suspect or dead peer
	ReasonProbeAnswered Reason = "probe_answered" // a suspect peer answered its probe
	ReasonSilent        Reason = "silent"         // no beat for SuspectAfter intervals
	ReasonTimeout       Reason = "timeout"        // no beat and no probe answer for DeadAfter intervals
	ReasonDisconnected  Reason = "disconnected"   // its connection ended and it did not come back (the crash fast path)
	ReasonGoodbye       Reason = "goodbye"        // the peer said it is leaving
	ReasonRestarted     Reason = "restarted"      // a beat with a new boot id
	ReasonConflict      Reason = "conflict"       // two boots are beating under one id
)

// reasons lists every Reason; the peer table keeps a peer's reason as its
// index here, in a byte.
var reasons = [...]Reason{"", ReasonFirstBeat, ReasonBeat, ReasonProbeAnswered, ReasonSilent,
	ReasonTimeout, ReasonDisconnected, ReasonGoodbye, ReasonRestarted, ReasonConflict}

// reasonCode returns r's index in reasons; 0 ("") for a reason it does
// not list.
func reasonCode(r Reason) uint8 {
	for i, x := range reasons {
		if x == r {
			return uint8(i)
		}
	}
	return 0
}

// Event is one transition of one peer.
type Event struct {
	Time     time.Time     // when this monitor decided, by its clock
	ID       string        // the peer's id
	Host     string        // the peer's host
	State    State         // the new state
	Prev     State         // the previous state; StateUnknown on first sighting
	Reason   Reason        // why the peer changed state
	Boot     string        // the peer's boot id
	PrevBoot string        // on a restart or conflict, the other boot id
	Seq      uint64        // the last seq seen from this boot
	Interval time.Duration // the peer's announced interval
	Restart  bool          // a new boot was seen for a known id
	Conflict bool          // two processes claim this id
	// Repeat is, on a suspect or alive event, how many times since its
	// last accepted beat the peer already went suspect and answered a
	// probe; 0 otherwise. A peer that goes suspect, answers the probe and
	// goes suspect again without beating in between repeats ID, Boot, State
	// and Seq; Repeat tells the second round from the first.
	Repeat int
	// Overshoot is, on a dead event with reason timeout, how late the
	// verdict came after its deadline. It measures the monitor, not the
	// peer.
	Overshoot time.Duration
	// LastBeat is when the monitor received the last beat it accepted
	// from the peer's current boot (on a beat's own event, that beat);
	// zero when it has none, as for a peer restored from restart memory
	// without one.
	LastBeat time.Time
}

// AppendJSON appends the event as one JSON object, the format of
// `hbmesh monitor --json` and of events published on NATS; [DecodeEvent]
// reads it back. "prev" is left out when Prev is StateUnknown (a peer's
// first event), "last_beat" when LastBeat is zero. A non-empty monitorID
// is included as "monitor".
func (e Event) AppendJSON(dst []byte, monitorID string) []byte {
	dst = append(dst, `{"time":"`...)
	dst = e.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","id":`...)
	dst = wire.AppendJSONString(dst, e.ID)
	dst = append(dst, `,"host":`...)
	dst = wire.AppendJSONString(dst, e.Host)
	dst = append(dst, `,"state":"`...)
	dst = append(dst, e.State.String()...)
	if e.Prev != StateUnknown {
		dst = append(dst, `","prev":"`...)
		dst = append(dst, e.Prev.String()...)
	}
	dst = append(dst, `","reason":"`...)
	dst = append(dst, e.Reason...)
	dst = append(dst, `","boot":`...)
	dst = wire.AppendJSONString(dst, e.Boot)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, e.Seq, 10)
	dst = append(dst, `,"interval_ms":`...)
	dst = strconv.AppendInt(dst, e.Interval.Milliseconds(), 10)
	dst = append(dst, `,"restart":`...)
	dst = strconv.AppendBool(dst, e.Restart)
	if !e.LastBeat.IsZero() {
		dst = append(dst, `,"last_beat":"`...)
		dst = e.LastBeat.UTC().AppendFormat(dst, time.RFC3339Nano)
		dst = append(dst, '"')
	}
	if e.PrevBoot != "" {
		dst = append(dst, `,"prev_boot":`...)
		dst = wire.AppendJSONString(dst, e.PrevBoot)
	}
	if e.Conflict {
		dst = append(dst, `,"conflict":true`...)
	}
	if e.Repeat > 0 {
		dst = append(dst, `,"repeat":`...)
		dst = strconv.AppendInt(dst, int64(e.Repeat), 10)
	}
	if monitorID != "" {
		dst = append(dst, `,"monitor":`...)
		dst = wire.AppendJSONString(dst, monitorID)
	}
	return append(dst, '}')
}

// String renders the event as one human-readable line. Boot ids come
// from the peer and may hold any UTF-8: one with a control character is
// shown quoted and escaped (see package internal/printable), so a beat
// cannot write escape sequences or extra lines to an operator's terminal.
func (e Event) String() string {
	s := fmt.Sprintf("%s %-8s %s", e.Time.Format("15:04:05.000"), e.State, printable.String(e.ID))
	if e.Prev != StateUnknown {
		s += fmt.Sprintf(" (was %s)", e.Prev)
	}
	s += " " + string(e.Reason)
	if e.Restart {
		s += fmt.Sprintf(" boot %s→%s", printable.String(e.PrevBoot), printable.String(e.Boot))
	}
	if e.Conflict {
		s += fmt.Sprintf(" boots %s and %s both claim this id", printable.String(e.PrevBoot), printable.String(e.Boot))
	}
	return s
}

// PeerInfo is a snapshot of one peer. Its JSON form is [PeerJSON]
// ([PeerInfo.JSON]).
type PeerInfo struct {
	ID    string
	Host  string
	State State
	Since time.Time
	// Reason is why the peer entered State; "" when not known (a peer
	// remembered by an older release).
	Reason   Reason
	LastBeat time.Time
	LastSeen time.Time // last beat or probe answer
	Seq      uint64
	Boot     string
	PID      int
	Interval time.Duration
	ProbeRTT time.Duration // 0 until a probe was answered
	Version  string
	Labels   map[string]string
	Conflict bool
	// ClockSkew is the sender's ts minus the arrival time of its last beat.
	// It is shown to operators and never used for liveness.
	ClockSkew time.Duration
	// History has bit i set if a beat arrived in the i-th most recent
	// interval (bit 0 is the current interval).
	History uint64

	// rawLabels is the labels object as the table keeps it, between a
	// snapshot taken under the monitor's lock and parseLabels, which
	// fills Labels from it once the lock is let go.
	rawLabels string
}

// parseLabels fills the Labels of snapshots taken under the monitor's
// lock, after it is let go: parsing is most of a snapshot's cost for
// peers with labels (a map and its strings each), and beats wait while
// the lock is held.
func parseLabels(ps []PeerInfo) {
	for i := range ps {
		ps[i].parseLabels()
	}
}

func (in *PeerInfo) parseLabels() {
	if in.rawLabels != "" {
		in.Labels = wire.ParseLabels([]byte(in.rawLabels))
		in.rawLabels = ""
	}
}
