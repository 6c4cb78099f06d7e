package status

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"github.com/hbmesh/hbmesh/internal/discovery"
	"github.com/hbmesh/hbmesh/internal/natsort"
	"github.com/hbmesh/hbmesh/monitor"
)

// ReportType is the versioned type string of a [Report] in JSON.
const ReportType = "io.hbmesh.status.v1.report"

// Peer states beyond monitor.State that a [Peer] row can show.
const (
	// StateSplit is a peer's consensus state when monitors disagree.
	StateSplit = "split"
	// StateMissing is what a monitor reports for a peer it does not know,
	// although it sent its whole table. It is a disagreement only with a
	// monitor that says the peer is alive or suspect: a peer that is left
	// or dead is one a monitor started later never saw, or one it forgot
	// after its retention, and no partition is to blame.
	StateMissing = "missing"
)

// Monitor is what one monitor said about itself.
type Monitor struct {
	ID      string `json:"id"`
	Version string `json:"version,omitempty"`
	// Ready and ReadyError come from the status reply; Status is false
	// when that reply did not arrive in time.
	Status     bool   `json:"status"`
	Ready      bool   `json:"ready"`
	ReadyError string `json:"ready_error,omitempty"`
	Connected  bool   `json:"connected"`
	Impaired   bool   `json:"impaired"`
	// Peers is how many peers the monitor has in its table: from its
	// status reply, or, when only its peers reply arrived, that reply's
	// total.
	Peers int `json:"peers"`
	// PeersAnswered is false when its peers reply did not arrive in time.
	PeersAnswered bool `json:"peers_answered"`
	// Truncated is set when its peers reply was cut to fit one message.
	Truncated bool `json:"truncated,omitempty"`
	// Error is an error reply from either endpoint.
	Error string `json:"error,omitempty"`
	// Instances is how many monitors answered under this id: the number
	// of InstanceIDs, or, for monitors too old to send one, the most
	// replies under this id to either request, since each monitor answers
	// each once. More than 1 means monitors share an id (it defaults to
	// the hostname); this row and its column then show only the monitor
	// in Instance, and Others the rest.
	Instances int `json:"instances"`
	// Instance is the micro service instance id (the id `nats micro ls`
	// lists) of the monitor whose replies this row and its column show.
	// Of monitors sharing this id, that is, among those that answered
	// both requests (among all, if none did), the one with the lowest
	// instance id, one that sends an instance id before one too old to;
	// not the first to answer, so the same replies make the same row
	// whatever order they came in. Replies of other instances under the
	// same id are not merged into the row, so it never mixes the views
	// of two processes that instance ids tell apart; they are in Others
	// and in each peer's SharedStates. Replies without an instance id, or
	// repeating one, cannot be told apart: each status reply among them
	// is paired with a peers reply in the order of their content (their
	// JSON), and each pair counts as one instance. Empty for a monitor
	// too old to send it.
	Instance string `json:"instance,omitempty"`
	// Others are the other monitors that answered under this id, when
	// monitors share it, sorted by instance id, then as paired (see
	// Instance). Each is one instance's replies, or one pair of replies
	// under an instance id whose first pair is elsewhere (a second
	// monitor, or a forger, sending its id). What
	// their peers replies say is in each peer's SharedStates; their
	// verdicts and their readiness count for --fail-on as this row's do
	// ([Report.Find]). At most 15 are kept (16 monitors under one id);
	// replies of further ones are counted in [Report.Ignored].
	Others []Instance `json:"others,omitempty"`
	// InstanceIDs are the instance ids of every monitor that answered
	// under this id, sorted; more than one means they share the id.
	InstanceIDs []string `json:"instance_ids,omitempty"`
	// Where says, for each instance id whose status reply named them,
	// the host and pid it runs as ("db-3 pid 4242"), so monitors sharing
	// an id can be found. Of status replies repeating an instance id, it
	// takes the first in the order of their content.
	Where map[string]string `json:"where,omitempty"`
}

// Instance is what one of several monitors sharing an id, other than the
// one its [Monitor] row shows, answered. Where it runs is in the row's
// Monitor.Where, under its instance id.
type Instance struct {
	// ID is its micro service instance id, as in Monitor.Instance, and
	// is "instance" in JSON like that one: "id" there is the monitor id
	// all the instances share. Empty for a monitor too old to send it.
	ID string `json:"instance,omitempty"`
	// Version, Status, Ready, ReadyError and Impaired are as in
	// [Monitor], from this instance's status reply: Status is false when
	// none arrived in time.
	Version    string `json:"version,omitempty"`
	Status     bool   `json:"status"`
	Ready      bool   `json:"ready"`
	ReadyError string `json:"ready_error,omitempty"`
	Impaired   bool   `json:"impaired"`
	// Peers is how many peers this instance has in its table, as in
	// [Monitor]: from its status reply, or, when only its peers reply
	// arrived, that reply's total.
	Peers int `json:"peers"`
	// PeersAnswered is false when no peers reply of this instance
	// arrived in time; Truncated is set when its reply was cut.
	PeersAnswered bool `json:"peers_answered"`
	Truncated     bool `json:"truncated,omitempty"`
}

// trusted reports whether the instance answered both requests and is
// ready and unimpaired, as --fail-on unready asks of every monitor.
func (i *Instance) trusted() bool {
	return i.answeredBoth() && i.Ready && !i.Impaired
}

// answeredBoth reports whether the instance answered both requests.
func (i *Instance) answeredBoth() bool { return i.Status && i.PeersAnswered }

// answeredBoth reports whether the monitor of this row answered both
// requests; an error row never did.
func (m *Monitor) answeredBoth() bool { return m.Error == "" && m.Status && m.PeersAnswered }

// InstanceState is what one of several monitors sharing an id, other
// than the one its column shows, says about a peer.
type InstanceState struct {
	// Monitor is the id the instance shares, a key of Peer.States.
	Monitor string `json:"monitor"`
	// Instance is its instance id, as in [Instance.ID].
	Instance string `json:"instance,omitempty"`
	// State is its state, or StateMissing.
	State string `json:"state"`
}

// Peer is one peer as every monitor sees it.
type Peer struct {
	ID   string `json:"id"`
	Host string `json:"host"`
	// State is the state every monitor agrees on, or StateSplit.
	State string `json:"state"`
	// Disagree is set when monitors report different states, or a monitor
	// with a complete table lacks a peer that another says is alive or
	// suspect (see StateMissing).
	Disagree bool `json:"disagree"`
	// States maps monitor id to the state it reports, or StateMissing;
	// a missing entry is kept even when it is no disagreement. Of
	// monitors that share an id, it holds the one in Monitor.Instance.
	States map[string]string `json:"states"`
	// SharedStates holds what the other monitors under a shared id
	// (Monitor.Others) say about the peer, where that is not what States
	// says for their id, sorted by monitor and instance id. State,
	// Disagree, Worst and Conflict count them, as does --fail-on.
	SharedStates []InstanceState `json:"shared_states,omitempty"`
	// Worst is the worst state any monitor reports; rows sort by it.
	Worst monitor.State `json:"worst"`
	// LastBeat, Seq, Version and Boot (and Host) are from the monitor
	// that heard the peer most recently; of monitors that heard it at
	// the same moment, the first by monitor id, then a shared id's
	// instances in the order Others lists them.
	LastBeat time.Time `json:"last_beat"`
	Seq      uint64    `json:"seq"`
	Version  string    `json:"version"`
	Boot     string    `json:"boot"`
	Conflict bool      `json:"conflict,omitempty"`
}

// Report is the merged view of every monitor that answered.
type Report struct {
	Type    string    `json:"type"` // ReportType
	Time    time.Time `json:"time"`
	Subject string    `json:"subject"` // the peers subject asked
	// Monitors are sorted by id.
	Monitors []Monitor `json:"monitors"`
	// Peers are sorted worst state first (dead, suspect, alive, left),
	// then by id.
	Peers []Peer `json:"peers"`
	// Warnings are problems of the mesh itself that the rows cannot show,
	// such as monitors sharing an id, or replies that were not read.
	Warnings []string `json:"warnings,omitempty"`
	// Ignored counts the replies that were not read into the report:
	// under more monitor ids than MaxMonitors, past MaxPeerStates,
	// dropped by NATS because they came faster than they could
	// be read, or not a reply to either request. Warnings say which. A
	// report that ignored replies may lack any monitor's view, so
	// [Report.Find] reports it whatever the conditions.
	Ignored int `json:"ignored,omitempty"`
	// Expected is how many monitors the mesh runs, if the caller said
	// (GatherExpect, --expect); 0 if not. Fewer answering both requests
	// ([Report.Answered]) is warned about and fails every --fail-on.
	Expected int `json:"expected,omitempty"`
	// Error is why a round of `hbmesh watch --json` has no monitors or
	// peers; it is empty in every report Gather returns.
	Error string `json:"error,omitempty"`
}

// MonitorCount returns how many monitors answered, counting each of
// those that share an id.
func (r *Report) MonitorCount() int {
	n := 0
	for i := range r.Monitors {
		n += max(r.Monitors[i].Instances, 1)
	}
	return n
}

// Conflicts counts the peers some monitor hears from two processes at
// once (Peer.Conflict).
func (r *Report) Conflicts() int {
	n := 0
	for i := range r.Peers {
		if r.Peers[i].Conflict {
			n++
		}
	}
	return n
}

// Disagreements returns how many peers the monitors disagree on.
func (r *Report) Disagreements() int {
	n := 0
	for i := range r.Peers {
		if r.Peers[i].Disagree {
			n++
		}
	}
	return n
}

// merge builds the peer rows from each monitor's peers reply, in
// replies, and from the peers replies of the other monitors under a
// shared id, in others.
func merge(monitors []Monitor, replies map[string]*discovery.PeersResponse, others map[string][]*discovery.PeersResponse) []Peer {
	rows := map[string]*Peer{}
	see := func(p *monitor.PeerJSON) *Peer {
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
		return row
	}
	// In monitor id order, so that of replies that last heard a peer at
	// the same moment the first wins whatever order a map yields them in.
	for _, mon := range slices.Sorted(maps.Keys(replies)) {
		rep := replies[mon]
		for i := range rep.Peers {
			see(&rep.Peers[i]).States[mon] = rep.Peers[i].State.String()
		}
	}
	// What each other instance says of each peer it lists, to find the
	// peers it does not.
	listed := map[*discovery.PeersResponse]map[string]string{}
	for _, mon := range slices.Sorted(maps.Keys(others)) {
		for _, rep := range others[mon] {
			states := make(map[string]string, len(rep.Peers))
			for i := range rep.Peers {
				see(&rep.Peers[i])
				states[rep.Peers[i].ID] = rep.Peers[i].State.String()
			}
			listed[rep] = states
		}
	}
	out := make([]Peer, 0, len(rows))
	for _, row := range rows {
		for _, m := range monitors {
			rep := replies[m.ID]
			if _, seen := row.States[m.ID]; !seen && rep != nil && !rep.Truncated {
				row.States[m.ID] = StateMissing
			}
		}
		for mon, reps := range others {
			for _, rep := range reps {
				st, ok := listed[rep][row.ID]
				if !ok && !rep.Truncated {
					st, ok = StateMissing, true
				}
				if ok && st != row.States[mon] {
					row.SharedStates = append(row.SharedStates, InstanceState{Monitor: mon, Instance: rep.Instance, State: st})
				}
			}
		}
		slices.SortFunc(row.SharedStates, func(a, b InstanceState) int {
			return cmp.Or(cmp.Compare(a.Monitor, b.Monitor), cmp.Compare(a.Instance, b.Instance), cmp.Compare(a.State, b.State))
		})
		row.State, row.Disagree = verdict(row.States, row.SharedStates)
		out = append(out, *row)
	}
	slices.SortFunc(out, func(a, b Peer) int {
		return cmp.Or(cmp.Compare(a.Worst.Severity(), b.Worst.Severity()), natsort.Compare(a.ID, b.ID))
	})
	return out
}

// verdict returns a peer's consensus state from what each monitor says
// about it, those sharing an id included, and whether they disagree.
// StateMissing counts only against alive or suspect: the monitors that
// know the peer agree it is gone.
func verdict(states map[string]string, shared []InstanceState) (state string, disagree bool) {
	missing, live := false, false
	say := func(st string) {
		switch st {
		case StateMissing:
			missing = true
			return
		case monitor.StateAlive.String(), monitor.StateSuspect.String():
			live = true
		}
		if state == "" {
			state = st
		} else if st != state {
			disagree = true
		}
	}
	for _, st := range states {
		say(st)
	}
	for _, s := range shared {
		say(s.State)
	}
	if disagree || (missing && live) {
		return StateSplit, true
	}
	return state, false
}

// Answered counts the monitors that answered both requests, those that
// share an id included (each of Monitor.Others), error rows not: what
// Expected is held against.
func (r *Report) Answered() int {
	n := 0
	for i := range r.Monitors {
		m := &r.Monitors[i]
		if m.answeredBoth() {
			n++
		}
		for j := range m.Others {
			if m.Others[j].answeredBoth() {
				n++
			}
		}
	}
	return n
}
