package status

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/hbmesh/hbmesh/internal/discovery"
	"github.com/hbmesh/hbmesh/monitor"
)

// ReportType is the versioned type string of a [Report] in JSON.
const ReportType = "io.hbmesh.status.v1.report"

// Peer states beyond monitor.State that a [Peer] row can show.
const (
	StateSplit = "split" // a peer's state when monitors disagree
	// StateMissing is a monitor's state for a peer it does not know,
	// though it sent its whole table.
	StateMissing = "missing"
)

// Monitor is what one monitor said about itself: each of several that
// share an id is one.
type Monitor struct {
	ID string `json:"id"`
	// Instance is its micro service instance id, as `nats micro ls` lists
	// it; empty if its replies had none.
	Instance string `json:"instance,omitempty"`
	// Instances is how many monitors answered under ID; more than 1 means
	// they share it, and each is shown as its own ([Monitor.Column]).
	Instances int    `json:"instances"`
	Version   string `json:"version,omitempty"`
	// Status is false when its status reply, which the next four fields
	// come from, did not arrive in time.
	Status     bool   `json:"status"`
	Ready      bool   `json:"ready"`
	ReadyError string `json:"ready_error,omitempty"`
	Connected  bool   `json:"connected"`
	Impaired   bool   `json:"impaired"`
	FastPath   bool   `json:"fast_path"` // it receives disconnect advisories
	// Peers is how many peers it has: from its status reply, or, when
	// only its peers reply arrived, that reply's total.
	Peers         int  `json:"peers"`
	PeersAnswered bool `json:"peers_answered"`      // its peers reply arrived in time
	Truncated     bool `json:"truncated,omitempty"` // and was cut to fit one message
}

// Column is the monitor's key in [Peer.States] and the name of its
// column: its id, or, when monitors share the id, id@instance (id@? for
// one whose replies had no instance id). An id that holds an "@" always
// takes its instance, and instance ids are letters and digits, so no two
// monitors share a column.
func (m *Monitor) Column() string {
	if m.Instances > 1 || strings.Contains(m.ID, "@") {
		return m.ID + "@" + cmp.Or(m.Instance, "?")
	}
	return m.ID
}

// answeredBoth reports whether the monitor answered both requests.
func (m *Monitor) answeredBoth() bool { return m.Status && m.PeersAnswered }

// Peer is one peer as every monitor sees it.
type Peer struct {
	ID    string `json:"id"`
	Host  string `json:"host"`
	State string `json:"state"` // what every monitor says, or StateSplit
	// Disagree is set when monitors report different states, or one with
	// a complete table lacks a peer another says is alive or suspect.
	Disagree bool `json:"disagree"`
	// States maps each monitor's Column to the state it reports, or
	// StateMissing, which is kept even when it is no disagreement.
	States map[string]string `json:"states"`
	Worst  monitor.State     `json:"worst"` // the worst state any monitor reports
	// LastBeat, Seq, Version and Boot (and Host) are from the monitor
	// that heard the peer last; of those that heard it at one moment,
	// the first in the report's order.
	LastBeat time.Time `json:"last_beat"`
	Seq      uint64    `json:"seq"`
	Version  string    `json:"version"`
	Boot     string    `json:"boot"`
	Conflict bool      `json:"conflict,omitempty"` // some monitor hears two processes as this id
}

// Report is the merged view of every monitor that answered.
type Report struct {
	Type     string    `json:"type"` // ReportType
	Time     time.Time `json:"time"`
	Subject  string    `json:"subject"`  // the peers subject asked
	Monitors []Monitor `json:"monitors"` // by id, then instance id
	Peers    []Peer    `json:"peers"`    // by monitor.ComparePeers of Worst and ID
	// Warnings are problems of the mesh that the rows cannot show, such
	// as monitors sharing an id, or replies that were not read.
	Warnings []string `json:"warnings,omitempty"`
	// Ignored counts the replies not read: errors and what no monitor
	// sends, past MaxMonitors or MaxPeerStates, a monitor's second reply
	// to one request, dropped by NATS, or not a reply. A warning says why
	// the first was. Any view may then be missing, so [Report.Find] fails.
	Ignored int `json:"ignored,omitempty"`
	// Expected is how many monitors the mesh runs, if the caller said
	// (--expect); fewer answering both requests ([Report.Answered]) is
	// warned about and fails every --fail-on.
	Expected int `json:"expected,omitempty"`
	// Error is why a round of `hbmesh watch --json` has no monitors or
	// peers; it is empty in every report Gather returns.
	Error string `json:"error,omitempty"`
}

// Conflicts counts the peers with Conflict set.
func (r *Report) Conflicts() int { return countFunc(r.Peers, func(p *Peer) bool { return p.Conflict }) }

// Disagreements counts the peers with Disagree set.
func (r *Report) Disagreements() int {
	return countFunc(r.Peers, func(p *Peer) bool { return p.Disagree })
}

// Answered counts the monitors that answered both requests.
func (r *Report) Answered() int { return countFunc(r.Monitors, (*Monitor).answeredBoth) }

func countFunc[T any](s []T, f func(*T) bool) int {
	n := 0
	for i := range s {
		if f(&s[i]) {
			n++
		}
	}
	return n
}

// merge builds the peer rows from the peers replies, by monitor column.
func merge(monitors []Monitor, replies map[string]*discovery.PeersResponse) []Peer {
	rows := map[string]*Peer{}
	for j := range monitors { // in order: of replies that tie on LastBeat, the first wins
		col := monitors[j].Column()
		rep := replies[col]
		for i := 0; rep != nil && i < len(rep.Peers); i++ {
			p := &rep.Peers[i]
			row, ok := rows[p.ID]
			if !ok {
				row = &Peer{ID: p.ID, States: map[string]string{}, Worst: p.State}
				rows[p.ID] = row
			}
			if p.State.Severity() < row.Worst.Severity() {
				row.Worst = p.State
			}
			if !ok || p.LastBeat.After(row.LastBeat) {
				row.Host, row.LastBeat, row.Seq, row.Version, row.Boot = p.Host, p.LastBeat, p.Seq, p.Version, p.Boot
			}
			row.Conflict = row.Conflict || p.Conflict
			row.States[col] = p.State.String()
		}
	}
	out := make([]Peer, 0, len(rows))
	for _, row := range rows {
		for j := range monitors {
			col := monitors[j].Column()
			if rep := replies[col]; rep != nil && !rep.Truncated && row.States[col] == "" {
				row.States[col] = StateMissing // a truncated table proves nothing missing
			}
		}
		row.State, row.Disagree = verdict(row.States)
		out = append(out, *row)
	}
	slices.SortFunc(out, func(a, b Peer) int { return monitor.ComparePeers(a.Worst, a.ID, b.Worst, b.ID) })
	return out
}

// verdict returns a peer's consensus state from what each monitor says
// about it, and whether they disagree. StateMissing counts only against
// alive or suspect.
func verdict(states map[string]string) (state string, disagree bool) {
	missing := false
	for _, st := range states {
		switch {
		case st == StateMissing:
			missing = true
		case state == "":
			state = st
		case st != state:
			return StateSplit, true
		}
	}
	if missing && (state == monitor.StateAlive.String() || state == monitor.StateSuspect.String()) {
		return StateSplit, true
	}
	return state, false
}
