package status

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/hbmesh/hbmesh/internal/discovery"
	"github.com/hbmesh/hbmesh/internal/natsort"
	"github.com/hbmesh/hbmesh/internal/printable"
	"github.com/hbmesh/hbmesh/monitor"
	"github.com/hbmesh/hbmesh/wire"
)

// DefaultWait is how long [Gather] waits for monitors when given zero.
const DefaultWait = time.Second

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

// ErrNoMonitors is returned by [Gather] when no monitor answered. The CLI
// can tell it apart from a broken connection.
var ErrNoMonitors = errors.New("no monitors answered")

// gatherError is an error of Gather whose message says more than the
// sentinel it wraps (ErrNoMonitors, or nats.go's connection errors).
type gatherError struct {
	msg string
	err error
}

func (e *gatherError) Error() string { return e.msg }
func (e *gatherError) Unwrap() error { return e.err }

// notConnected is Gather's error when nc cannot carry a request: asking
// anyway would only wait out the wait and blame the monitors.
func notConnected(nc *nats.Conn) error {
	if nc.IsClosed() {
		return &gatherError{"status: NATS connection closed", nats.ErrConnectionClosed}
	}
	return &gatherError{"not connected to NATS; reconnecting", nats.ErrConnectionReconnecting}
}

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
	// Peers is how many peers the monitor has in its table.
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
	// in Instance.
	Instances int `json:"instances"`
	// Instance is the micro service instance id (the id `nats micro ls`
	// lists) of the monitor whose replies this row and its column show:
	// the first to answer under this id. Replies of other instances under
	// the same id are counted but not merged into the row, so it never
	// mixes two processes' views. Empty for a monitor too old to send it.
	Instance string `json:"instance,omitempty"`
	// InstanceIDs are the instance ids of every monitor that answered
	// under this id, sorted; more than one means they share the id.
	InstanceIDs []string `json:"instance_ids,omitempty"`
	// Where says, for each instance id whose status reply named them,
	// the host and pid it runs as ("db-3 pid 4242"), so monitors sharing
	// an id can be found.
	Where map[string]string `json:"where,omitempty"`
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
	// a missing entry is kept even when it is no disagreement.
	States map[string]string `json:"states"`
	// Worst is the worst state any monitor reports; rows sort by it.
	Worst monitor.State `json:"worst"`
	// LastBeat, Seq, Version and Boot are from the monitor that heard the
	// peer most recently.
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

// quiet is how long Gather waits for another monitor once every monitor
// that has answered so far has answered both requests. Replies to one
// publish arrive within milliseconds of each other on a healthy server.
func quiet(wait time.Duration) time.Duration {
	return min(max(wait/4, 10*time.Millisecond), 250*time.Millisecond)
}

// Gather asks every monitor under prefix for its peers and status and
// merges their answers. It waits at most wait (DefaultWait if zero or
// less) and returns an error wrapping ErrNoMonitors if none answered; if
// the server says no monitor subscribes to the subjects at all, it
// returns at once with an error that says so. If nc is not connected it
// returns at once with an error wrapping nats.ErrConnectionReconnecting
// (or nats.ErrConnectionClosed) rather than wait for answers that cannot
// come.
func Gather(ctx context.Context, nc *nats.Conn, prefix string, wait time.Duration) (*Report, error) {
	return gather(ctx, nc, prefix, wait, 0)
}

// gather is Gather; pending, if positive, is how many replies may wait
// to be read before NATS drops more, instead of nats.go's default.
func gather(ctx context.Context, nc *nats.Conn, prefix string, wait time.Duration, pending int) (*Report, error) {
	if nc == nil {
		return nil, errors.New("status: nil *nats.Conn")
	}
	if wait <= 0 {
		wait = DefaultWait
	}
	subj, err := wire.NewSubjects(prefix)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	if !nc.IsConnected() {
		return nil, notConnected(nc)
	}
	peersSubj, statusSubj := subj.Control(discovery.EndpointPeers), subj.Control(discovery.EndpointStatus)
	inbox := nc.NewInbox()
	peersReply, statusReply := inbox+"."+discovery.EndpointPeers, inbox+"."+discovery.EndpointStatus
	// A sync subscription needs no goroutine of ours and buffers up to
	// nats.go's default pending limits, far more monitors than exist.
	// Beyond them NATS drops replies, which the report counts.
	sub, err := nc.SubscribeSync(inbox + ".*")
	if err != nil {
		return nil, fmt.Errorf("status: subscribe %q: %w", inbox+".*", err)
	}
	defer sub.Unsubscribe()
	if pending > 0 {
		if err := sub.SetPendingLimits(pending, nats.DefaultSubPendingBytesLimit); err != nil {
			return nil, fmt.Errorf("status: subscribe %q: %w", inbox+".*", err)
		}
	}
	if err := nc.PublishRequest(peersSubj, peersReply, nil); err != nil {
		return nil, fmt.Errorf("status: request %q: %w", peersSubj, err)
	}
	if err := nc.PublishRequest(statusSubj, statusReply, nil); err != nil {
		return nil, fmt.Errorf("status: request %q: %w", statusSubj, err)
	}

	g := newGathering()
	start := time.Now()
	end := start.Add(wait)
	noResponders := 0
	for {
		until := end
		if q := g.last.Add(quiet(wait)); g.complete() && q.Before(end) {
			until = q
		}
		mctx, cancel := context.WithDeadline(ctx, until)
		msg, err := sub.NextMsgWithContext(mctx)
		cancel()
		if errors.Is(err, nats.ErrNoResponders) {
			// The server had no subscriber for one of the requests;
			// nats.go turns its empty 503 reply into this error. Once
			// anything has answered, the server cannot say that: anyone
			// who may answer can send the same 503, so it is then only
			// an odd reply.
			if len(g.monitors) > 0 {
				g.ignore(ignoredOdd)
				continue
			}
			if noResponders++; noResponders == 2 {
				break
			}
			continue
		}
		if errors.Is(err, nats.ErrSlowConsumer) {
			continue // replies were dropped; sub.Dropped counts them below
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("status: gather: %w", ctx.Err())
			}
			break // our deadline: the wait or the quiet period is over
		}
		switch msg.Subject {
		case peersReply, statusReply:
			g.last = time.Now()
			g.add(msg.Subject == peersReply, msg)
		default:
			g.ignore(ignoredOdd)
		}
	}
	if n, err := sub.Dropped(); err == nil && n > 0 {
		g.ignored[ignoredDropped] += n
	}
	if len(g.monitors) == 0 {
		switch {
		case noResponders == 2:
			// The server said so at once: nobody listens there at all.
			return nil, &gatherError{fmt.Sprintf("no monitor is subscribed on %s (wrong --prefix?)", peersSubj), ErrNoMonitors}
		case !nc.IsConnected():
			return nil, notConnected(nc) // lost while we waited
		}
		return nil, fmt.Errorf("%w on %s within %s%s", ErrNoMonitors, peersSubj, wait, g.ignoredNote())
	}
	return g.report(start, peersSubj), nil
}

// gathering accumulates replies. It is owned by Gather's goroutine.
type gathering struct {
	monitors map[string]*Monitor
	peers    map[string]*discovery.PeersResponse
	// replies counts the replies under each monitor id to each request
	// (true: peers), to find monitors that share an id.
	replies map[bool]map[string]int
	// bad counts the replies that were errors or did not decode, under
	// the id of their error row.
	bad map[string]int
	// distinct holds the id of every peer the replies in peers list;
	// times the number of those replies, it bounds the report's size,
	// which MaxPeerStates bounds.
	distinct map[string]struct{}
	// maxStates is MaxPeerStates, smaller in tests.
	maxStates int
	ignored   [ignoredKinds]int
	last      time.Time
}

// Why a reply was ignored, for Report.Ignored and its warnings.
const (
	ignoredMonitors = iota // under a monitor id beyond MaxMonitors
	ignoredPeers           // its peers would pass MaxPeerStates
	ignoredDropped         // dropped by NATS: the subscription's buffer was full
	ignoredOdd             // on another subject, or a 503 after replies
	ignoredKinds
)

func newGathering() *gathering {
	return &gathering{
		monitors:  map[string]*Monitor{},
		peers:     map[string]*discovery.PeersResponse{},
		replies:   map[bool]map[string]int{true: {}, false: {}},
		bad:       map[string]int{},
		distinct:  map[string]struct{}{},
		maxStates: MaxPeerStates,
	}
}

func (g *gathering) ignore(kind int) { g.ignored[kind]++ }

// ignoredNote says, after an error that no monitor answered, that
// replies were ignored, since those may have been the monitors'.
func (g *gathering) ignoredNote() string {
	n := 0
	for _, k := range g.ignored {
		n += k
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d replies ignored)", n)
}

// admit reports whether a reply under monitor id may be read: its id is
// known already, or there is room for another.
func (g *gathering) admit(id string) bool {
	if _, ok := g.monitors[id]; ok || len(g.monitors) < MaxMonitors {
		return true
	}
	g.ignore(ignoredMonitors)
	return false
}

// fits reports whether the report stays within MaxPeerStates with r
// among its peers replies. Each peer row holds a state for every monitor
// that sent its peers ("missing" if it does not list the peer), so the
// report holds distinct peers × peers replies states: a few monitors of
// one fleet list the same peers, but fake monitors could each list
// different ones.
func (g *gathering) fits(r *discovery.PeersResponse) bool {
	peers := len(g.distinct)
	for i := range r.Peers {
		if _, ok := g.distinct[r.Peers[i].ID]; !ok {
			peers++
		}
	}
	replies := len(g.peers)
	if _, ok := g.peers[r.Monitor]; !ok {
		replies++
	}
	return peers*replies <= g.maxStates
}

// fail records a reply that was an error or did not decode, under an
// error row named after the subject it came on: the reply cannot be
// trusted to name its monitor. The row keeps the first such error, and
// the report says how many there were.
func (g *gathering) fail(subject, msg string) {
	id := "?" + subject
	if m := g.monitor(id); m.Error == "" {
		m.Error = msg
	}
	g.bad[id]++
}

// answered counts a reply of monitor id, from instance, to one request,
// and reports whether it is from the instance the row shows: the first
// one heard under id. A reply without an instance (an older monitor)
// cannot be told apart, so it is always shown.
func (g *gathering) answered(isPeers bool, id, instance string) (show bool) {
	g.replies[isPeers][id]++
	m := g.monitor(id)
	if instance != "" && len(m.InstanceIDs) < maxInstanceIDs && !slices.Contains(m.InstanceIDs, instance) {
		m.InstanceIDs = append(m.InstanceIDs, instance)
	}
	m.Instances = max(m.Instances, g.replies[isPeers][id], len(m.InstanceIDs))
	if !m.Status && !m.PeersAnswered {
		m.Instance = instance
		return true
	}
	return instance == "" || m.Instance == "" || instance == m.Instance
}

// complete reports whether every monitor heard from has answered both
// requests (or failed one), so only a new monitor could still add news.
func (g *gathering) complete() bool {
	if len(g.monitors) == 0 {
		return false
	}
	for _, m := range g.monitors {
		if m.Error == "" && (!m.Status || !m.PeersAnswered) {
			return false
		}
	}
	return true
}

func (g *gathering) monitor(id string) *Monitor {
	m, ok := g.monitors[id]
	if !ok {
		m = &Monitor{ID: id}
		g.monitors[id] = m
	}
	return m
}

// add records one reply. A reply that is an error, does not decode, or
// holds what no monitor sends (see checkPeers and checkStatus) is kept as
// an error row under the subject it came on, so an operator sees that
// something answered badly.
func (g *gathering) add(isPeers bool, msg *nats.Msg) {
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		// Error replies carry no body to name the monitor; the reply
		// subject is the best label we have.
		g.fail(msg.Subject, code+" "+msg.Header.Get(micro.ErrorHeader))
		return
	}
	if isPeers {
		var r discovery.PeersResponse
		err := json.Unmarshal(msg.Data, &r)
		if err == nil {
			err = checkPeers(&r)
		}
		if err != nil {
			g.fail(msg.Subject, fmt.Sprintf("bad peers reply: %v", err))
			return
		}
		if !g.admit(r.Monitor) {
			return
		}
		if !g.fits(&r) {
			g.ignore(ignoredPeers)
			return
		}
		if !g.answered(true, r.Monitor, r.Instance) {
			return
		}
		m := g.monitor(r.Monitor)
		m.PeersAnswered, m.Truncated = true, r.Truncated
		if !m.Status {
			m.Peers = r.Total
		}
		for i := range r.Peers {
			g.distinct[r.Peers[i].ID] = struct{}{}
		}
		g.peers[r.Monitor] = &r
		return
	}
	var r discovery.StatusResponse
	err := json.Unmarshal(msg.Data, &r)
	if err == nil {
		err = checkStatus(&r)
	}
	if err != nil {
		g.fail(msg.Subject, fmt.Sprintf("bad status reply: %v", err))
		return
	}
	if !g.admit(r.Monitor) {
		return
	}
	show := g.answered(false, r.Monitor, r.Instance)
	m := g.monitor(r.Monitor)
	if r.Instance != "" && (r.Host != "" || r.PID != 0) && slices.Contains(m.InstanceIDs, r.Instance) {
		if m.Where == nil {
			m.Where = map[string]string{}
		}
		m.Where[r.Instance] = strings.TrimSpace(fmt.Sprintf("%s pid %d", r.Host, r.PID))
	}
	if !show {
		return
	}
	m.Status, m.Version, m.Ready, m.ReadyError = true, r.Version, r.Ready, r.ReadyError
	m.Connected, m.Impaired, m.Peers = r.Connected, r.Impaired, r.Peers
}

func (g *gathering) report(now time.Time, subject string) *Report {
	r := &Report{Type: ReportType, Time: now.UTC(), Subject: subject}
	for id, m := range g.monitors {
		if n := g.bad[id]; n > 1 {
			m.Error += fmt.Sprintf(" (%d bad replies on this subject)", n)
		}
		slices.Sort(m.InstanceIDs)
		r.Monitors = append(r.Monitors, *m)
	}
	slices.SortFunc(r.Monitors, func(a, b Monitor) int { return strings.Compare(a.ID, b.ID) })
	r.Peers = merge(r.Monitors, g.peers)
	for _, m := range r.Monitors {
		if m.Instances > 1 {
			which := ""
			if len(m.InstanceIDs) > 1 {
				names := make([]string, len(m.InstanceIDs))
				for i, id := range m.InstanceIDs {
					names[i] = id
					if w := m.Where[id]; w != "" {
						names[i] += " on " + printable.String(w)
					}
				}
				if more := m.Instances - len(names); more > 0 && len(names) == maxInstanceIDs {
					names = append(names, fmt.Sprintf("and %d more", more))
				}
				which = " (instances " + strings.Join(names, ", ") + ")"
			}
			r.Warnings = append(r.Warnings, fmt.Sprintf("%d monitors answer as %q%s: give each its own --id", m.Instances, m.ID, which))
		}
	}
	for kind, n := range g.ignored {
		if n == 0 {
			continue
		}
		r.Ignored += n
		r.Warnings = append(r.Warnings, ignoredWarning(kind, n, subject))
	}
	return r
}

// ignoredWarning explains n ignored replies of one kind; subject is the
// peers subject. Only monitors should answer there (docs/SECURITY.md).
func ignoredWarning(kind, n int, subject string) string {
	switch kind {
	case ignoredMonitors:
		return fmt.Sprintf("ignored %d replies under more than %d monitor ids: is something other than monitors answering on %s?", n, MaxMonitors, subject)
	case ignoredPeers:
		return fmt.Sprintf("ignored %d peers replies past %d peer states (peers × monitors): is something other than monitors answering on %s?", n, MaxPeerStates, subject)
	case ignoredDropped:
		return fmt.Sprintf("%d replies dropped: they came faster than they could be read; is something flooding the replies to %s?", n, subject)
	}
	return fmt.Sprintf("ignored %d messages that were not replies to the requests on %s", n, subject)
}

// merge builds the peer rows from each monitor's peers reply.
func merge(monitors []Monitor, replies map[string]*discovery.PeersResponse) []Peer {
	rows := map[string]*Peer{}
	for mon, rep := range replies {
		for _, p := range rep.Peers {
			row, ok := rows[p.ID]
			if !ok {
				row = &Peer{ID: p.ID, States: map[string]string{}, Worst: p.State}
				rows[p.ID] = row
			}
			row.States[mon] = p.State.String()
			if p.State.Severity() < row.Worst.Severity() {
				row.Worst = p.State
			}
			if !ok || p.LastBeat.After(row.LastBeat) {
				row.Host, row.LastBeat, row.Seq, row.Version, row.Boot = p.Host, p.LastBeat, p.Seq, p.Version, p.Boot
			}
			row.Conflict = row.Conflict || p.Conflict
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
		row.State, row.Disagree = verdict(row.States)
		out = append(out, *row)
	}
	slices.SortFunc(out, func(a, b Peer) int {
		return cmp.Or(cmp.Compare(a.Worst.Severity(), b.Worst.Severity()), natsort.Compare(a.ID, b.ID))
	})
	return out
}

// verdict returns a peer's consensus state from what each monitor says
// about it, and whether they disagree. StateMissing counts only against
// alive or suspect: the monitors that know the peer agree it is gone.
func verdict(states map[string]string) (state string, disagree bool) {
	missing, live := false, false
	for _, st := range states {
		switch st {
		case StateMissing:
			missing = true
			continue
		case monitor.StateAlive.String(), monitor.StateSuspect.String():
			live = true
		}
		if state == "" {
			state = st
		} else if st != state {
			disagree = true
		}
	}
	if disagree || (missing && live) {
		return StateSplit, true
	}
	return state, false
}
